"""Write checkpoints in PyTorch's zip format without torch, for tests.

Produces what `torch.save(state_dict, path)` writes (torch >= 1.6): a zip holding
`<name>/data.pkl`, a protocol-2 pickle in which every tensor is a
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)` call on a
persistent storage id, and `<name>/data/<key>`, the raw little-endian storages. The pickle is
written opcode by opcode, so torch's globals are named without importing torch.
"""
import pickle
import struct
import zipfile

import numpy as np

_STORAGE_NAMES = {np.dtype(np.float32): 'FloatStorage', np.dtype(np.int64): 'LongStorage',
                  np.dtype(np.float16): 'HalfStorage', np.dtype(np.float64): 'DoubleStorage'}


def _global(module, name):
    return pickle.GLOBAL + f'{module}\n{name}\n'.encode()


def _str(text):
    data = text.encode()
    return pickle.BINUNICODE + struct.pack('<I', len(data)) + data


def _int(value):
    return pickle.BININT + struct.pack('<i', value)


def _tuple(items):
    return pickle.MARK + b''.join(items) + pickle.TUPLE


def _tensor(key, array):
    storage = _tuple([_str('storage'), _global('torch', _STORAGE_NAMES[array.dtype]),
                      _str(key), _str('cpu'), _int(array.size)]) + pickle.BINPERSID
    stride = [s // array.itemsize for s in array.strides]
    hooks = _global('collections', 'OrderedDict') + pickle.EMPTY_TUPLE + pickle.REDUCE
    args = _tuple([storage, _int(0), _tuple([_int(n) for n in array.shape]),
                   _tuple([_int(s) for s in stride]), pickle.NEWFALSE, hooks])
    return _global('torch._utils', '_rebuild_tensor_v2') + args + pickle.REDUCE


def save_torch_zip(state_dict, path, archive_name='archive'):
    """Write an ordered dict name -> numpy array as a torch zip checkpoint at `path`."""
    arrays = [np.require(v, requirements="C") for v in state_dict.values()]  # keeps 0-d arrays 0-d
    body = b''.join(_str(k) + _tensor(str(i), a) for i, (k, a) in enumerate(zip(state_dict, arrays)))
    data = (pickle.PROTO + b'\x02' + _global('collections', 'OrderedDict') + pickle.EMPTY_TUPLE
            + pickle.REDUCE + pickle.MARK + body + pickle.SETITEMS + pickle.STOP)
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as archive:
        archive.writestr(f'{archive_name}/data.pkl', data)
        archive.writestr(f'{archive_name}/byteorder', 'little')
        archive.writestr(f'{archive_name}/version', '3\n')
        for i, array in enumerate(arrays):
            archive.writestr(f'{archive_name}/data/{i}', array.tobytes())


def paddle_to_official_state_dict(paddle_state_dict):
    """Paddle state dict of a MattingRefine/MattingBase -> official torch naming, as torch saves it.

    BatchNorm `_mean`/`_variance` become `running_mean`/`running_var`, each followed by the
    int64 `num_batches_tracked` counter torch keeps.
    """
    official = {}
    for key, value in paddle_state_dict.items():
        value = np.asarray(value.numpy() if hasattr(value, 'numpy') else value)
        if key.endswith('._mean'):
            official[key[:-len('_mean')] + 'running_mean'] = value
        elif key.endswith('._variance'):
            official[key[:-len('_variance')] + 'running_var'] = value
            official[key[:-len('_variance')] + 'num_batches_tracked'] = np.array(0, np.int64)
        else:
            official[key] = value
    return official
