"""Weights files -> ready BackgroundMattingV2 models: official PyTorch checkpoints, .pdparams
and train.py checkpoints, read and hashed once.

    model = build_model('pytorch_mobilenetv2.pth', refine_mode='sampling')   # eval mode
    weights = Weights('model.pdparams'); weights.sha256, weights.config, weights.state

The official checkpoints are written by `torch.save` (zip format since torch 1.6): a zip holding
`data.pkl` (the pickled state dict, tensors as persistent references) and one file per tensor
storage. We read them with `pickle` and numpy, through an unpickler that only accepts the few
globals a state dict needs, so a checkpoint cannot run code when it is read. Only the legacy
(pre-1.6, non-zip) format needs torch.

Paddle and torch name the layers of this model the same way; only BatchNorm running statistics
differ (`running_mean` / `running_var` -> `_mean` / `_variance`) and torch's
`num_batches_tracked` counters have no Paddle counterpart.
"""
import collections
import hashlib
import io
import os
import pickle
import warnings
import zipfile

import numpy as np

_STORAGE_DTYPES = {
    'DoubleStorage': np.float64, 'FloatStorage': np.float32, 'HalfStorage': np.float16,
    'BFloat16Storage': 'bfloat16', 'LongStorage': np.int64, 'IntStorage': np.int32,
    'ShortStorage': np.int16, 'CharStorage': np.int8, 'ByteStorage': np.uint8,
    'BoolStorage': np.bool_, 'UntypedStorage': np.uint8,
}


class CheckpointError(ValueError):
    """The file is not a usable BackgroundMattingV2 checkpoint; the message says why and what to do."""


# ---------------------------------------------------------------------------------------------
# Reading torch checkpoints
# ---------------------------------------------------------------------------------------------

class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    size, stride = tuple(size), tuple(stride)
    if not size:
        return storage[storage_offset:storage_offset + 1].reshape(()).copy()
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:], shape=size, strides=[s * storage.itemsize for s in stride])
    return np.ascontiguousarray(view)


def _rebuild_parameter(data, requires_grad, backward_hooks, *unused):
    return data


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a torch zip checkpoint's data.pkl into numpy arrays; refuses anything else."""

    _GLOBALS = {
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
        ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
    }

    def __init__(self, file, archive, prefix):
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._storages = {}

    def find_class(self, module, name):
        if (module, name) in self._GLOBALS:
            return self._GLOBALS[(module, name)]
        if module in ('torch', 'torch.storage') and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(
            f'{module}.{name} is not part of a plain state dict (a whole pickled model or training '
            f'state?); save model.state_dict() with torch.save instead')

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel = pid[:5]
        if kind != 'storage':
            raise pickle.UnpicklingError(f'unknown persistent id {kind!r}')
        if key not in self._storages:
            raw = self._archive.read(f'{self._prefix}/data/{key}')
            if storage_type.dtype == 'bfloat16':
                # numpy has no bfloat16: widen to float32 by placing the 16 bits on top.
                data = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                data = np.frombuffer(raw, storage_type.dtype)
            self._storages[key] = data[:numel] if storage_type.name != 'UntypedStorage' else data
        return self._storages[key]



def _read_zip_checkpoint(path, data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        pkl = [n for n in archive.namelist() if n.endswith('/data.pkl') or n == 'data.pkl']
        if not pkl:
            raise CheckpointError(f'{path}: a zip file but not a torch checkpoint (no data.pkl)')
        prefix = pkl[0][:-len('/data.pkl')] if '/' in pkl[0] else ''
        byteorder = f'{prefix}/byteorder'
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b'little':
            raise CheckpointError(f'{path}: big-endian checkpoints are not supported')
        with archive.open(pkl[0]) as f:
            try:
                return _StateDictUnpickler(io.BytesIO(f.read()), archive, prefix).load()
            except pickle.UnpicklingError as e:
                raise CheckpointError(f'{path}: {e}') from None



def _read_legacy_checkpoint(path, data):
    try:
        import torch  # only the pre-1.6 format needs it
    except ImportError:
        raise CheckpointError(
            f'{path}: not in the zip format torch.save writes since torch 1.6; reading this older '
            f'format needs torch (pip install torch), or re-save it once with torch >= 1.6: '
            f'torch.save(torch.load(OLD), NEW)') from None
    try:
        obj = torch.load(io.BytesIO(data), map_location='cpu', weights_only=True)
    except Exception as e:  # torch raises many different types for non-checkpoints
        raise CheckpointError(f'{path}: torch cannot read it as a checkpoint ({e})') from None
    return _tensors_to_numpy(obj)


def _tensors_to_numpy(obj):
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _tensors_to_numpy(v)) for k, v in obj.items())
    if hasattr(obj, 'detach'):
        return obj.detach().cpu().numpy()
    return obj


def read_torch_checkpoint(path, data=None):
    """Read a PyTorch checkpoint file into an OrderedDict of name -> numpy array (no torch needed).

    Accepts a plain state dict, or a dict wrapping one under 'state_dict', 'model_state' or
    'model' (as training scripts save them); a `module.` prefix (DataParallel) is removed.
    `data`: the file's bytes if already read.
    """
    if data is None:
        if not os.path.isfile(path):
            raise CheckpointError(f'{path}: no such file; check the weights path')
        data = _read_file(path)
    obj = (_read_zip_checkpoint(path, data) if zipfile.is_zipfile(io.BytesIO(data))
           else _read_legacy_checkpoint(path, data))
    if isinstance(obj, dict):
        for wrapper in ('state_dict', 'model_state', 'model'):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise CheckpointError(f'{path}: does not hold a state dict of tensors')
    return collections.OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v) for k, v in obj.items())


# ---------------------------------------------------------------------------------------------
# Mapping to Paddle
# ---------------------------------------------------------------------------------------------

def torch_key_to_paddle(key):
    """Paddle name of a torch state-dict entry, or None for entries Paddle has no use for."""
    if key.endswith('num_batches_tracked'):
        return None
    if key.endswith('.running_mean'):
        return key[:-len('running_mean')] + '_mean'
    if key.endswith('.running_var'):
        return key[:-len('running_var')] + '_variance'
    return key


def detect_config(state_dict):
    """Model configuration from state-dict keys (torch or Paddle naming).

    Returns dict(backbone=..., model_type='refine'|'base', refine_kernel_size=3|1|None).
    Raises CheckpointError if the keys are not those of a BackgroundMattingV2 model.
    """
    keys = set(state_dict)
    if 'backbone.features.0.0.weight' in keys:
        backbone = 'mobilenetv2'
    elif 'backbone.layer3.0.conv1.weight' in keys:
        backbone = 'resnet101' if 'backbone.layer3.22.conv1.weight' in keys else 'resnet50'
    else:
        raise CheckpointError('not a BackgroundMattingV2 checkpoint: no MobileNetV2 or ResNet '
                              'backbone entries (backbone.features.* / backbone.layer*)')
    if not any(k.startswith('decoder.') for k in keys):
        raise CheckpointError('not a BackgroundMattingV2 checkpoint: no decoder.* entries '
                              '(DeepLabV3 weights? load them with load_pretrained_deeplabv3)')
    kernel = None
    if 'refiner.conv1.weight' in keys:
        kernel = int(state_dict['refiner.conv1.weight'].shape[-1])
    return {'backbone': backbone, 'model_type': 'refine' if kernel else 'base',
            'refine_kernel_size': kernel}


def _expected_shapes(config):
    """name -> shape of every Paddle parameter/buffer of the model that `config` describes."""
    import paddle
    from .model import MattingBase, MattingRefine
    with paddle.LazyGuard():  # shapes only: do not allocate or initialise the weights
        if config['model_type'] == 'refine':
            model = MattingRefine(config['backbone'], refine_kernel_size=config['refine_kernel_size'])
        else:
            model = MattingBase(config['backbone'])
    return collections.OrderedDict((k, list(v.shape)) for k, v in model.state_dict().items())


def _describe(names, limit=10):
    names = sorted(names)
    more = f' ... and {len(names) - limit} more' if len(names) > limit else ''
    return ', '.join(names[:limit]) + more


def convert_state_dict(torch_state_dict):
    """Official torch state dict (numpy values) -> (Paddle state dict of float32 arrays, config).

    Every entry must match the model detected from the keys in name and shape; otherwise a
    CheckpointError lists what is missing, unexpected or of the wrong shape.
    """
    config = detect_config(torch_state_dict)
    converted = collections.OrderedDict()
    for key, value in torch_state_dict.items():
        name = torch_key_to_paddle(key)
        if name is not None:
            converted[name] = np.asarray(value, dtype=np.float32)
    expected = _expected_shapes(config)
    missing = set(expected) - set(converted)
    unexpected = set(converted) - set(expected)
    wrong = [f'{k} {list(converted[k].shape)} (expected {expected[k]})'
             for k in expected if k in converted and list(converted[k].shape) != expected[k]]
    if missing or unexpected or wrong:
        kind = f"{config['backbone']} {config['model_type']}"
        problems = []
        if missing:
            problems.append(f'{len(missing)} missing: {_describe(missing)}')
        if unexpected:
            problems.append(f'{len(unexpected)} unexpected: {_describe(unexpected)}')
        if wrong:
            problems.append(f'{len(wrong)} of the wrong shape: {_describe(wrong)}')
        raise CheckpointError(f'entries do not match a {kind} model: ' + '; '.join(problems))
    # Keep the model's own order so that the .pdparams reads like the model.
    return collections.OrderedDict((k, converted[k]) for k in expected), config


def convert_deeplabv3_state_dict(torch_state_dict, backbone):
    """Rename pretrained DeepLabV3 weights (VainF/DeepLabV3Plus-Pytorch) to our layer names.

    As the official `load_pretrained_deeplabv3_state_dict`: the ASPP is `classifier.classifier.0`
    there, and the MobileNetV2 features are split into `low_level_features` (blocks 0-3) and
    `high_level_features` (blocks 4-). Returns a partial Paddle state dict; load it with
    `load_matched_state_dict`, which keeps only entries that match in name and shape.
    """
    renamed = collections.OrderedDict()
    for key, value in torch_state_dict.items():
        key = key.replace('classifier.classifier.0', 'aspp')
        if backbone == 'mobilenetv2':
            for part, offset in (('low_level_features', 0), ('high_level_features', 4)):
                prefix = f'backbone.{part}.'
                if key.startswith(prefix):
                    index, rest = key[len(prefix):].split('.', 1)
                    key = f'backbone.features.{int(index) + offset}.{rest}'
        name = torch_key_to_paddle(key)
        if name is not None:
            renamed[name] = np.asarray(value, dtype=np.float32)
    return renamed


def load_matched_state_dict(model, state_dict, verbose=True):
    """Load the entries of `state_dict` that match the model in name and shape; ignore the rest.

    Returns (matched, total) counts over the model's entries.
    """
    import paddle
    current = model.state_dict()
    matched = {k: v for k, v in state_dict.items()
               if k in current and list(current[k].shape) == list(np.shape(v))}
    for key, value in matched.items():
        current[key].set_value(paddle.to_tensor(value, dtype=current[key].dtype))
    if verbose:
        print(f'Loaded state_dict: {len(matched)}/{len(current)} matched')
    return len(matched), len(current)


# ---------------------------------------------------------------------------------------------
# Weights files
# ---------------------------------------------------------------------------------------------

def _read_file(path):
    with open(path, 'rb') as f:
        return f.read()


class Weights:
    """A weights file, read once: its sha256 at once, its state dict and config when first asked.

    Accepts an official .pth (converted in memory), a .pdparams, or a train.py checkpoint (its
    model entry). Attributes: path, sha256, state (OrderedDict name -> float32 array in Paddle
    naming), config (dict(backbone, model_type, refine_kernel_size), see `detect_config`).
    """

    def __init__(self, path):
        if not os.path.isfile(path):
            raise CheckpointError(f'{path}: no such file; check the weights path')
        self.path = path
        self._data = _read_file(path)
        self.sha256 = hashlib.sha256(self._data).hexdigest()
        self._parsed = None

    def _parse(self):
        if self._parsed is None:
            self._parsed = _parse_weights(self.path, self._data)
            self._data = None  # the arrays hold what is needed now
        return self._parsed

    @property
    def state(self):
        return self._parse()[0]

    @property
    def config(self):
        return self._parse()[1]


def _parse_weights(path, data):
    if zipfile.is_zipfile(io.BytesIO(data)) or path.endswith(('.pth', '.pt')):
        return convert_state_dict(read_torch_checkpoint(path, data))
    import paddle
    buffer = io.BytesIO(data)
    try:
        state = paddle.load(buffer, return_numpy=True)
    except Exception as e:  # paddle raises assorted types for foreign files
        message = str(e).replace(str(buffer), path)
        raise CheckpointError(f'{path}: not a Paddle .pdparams file ({type(e).__name__}: {message})') from None
    if isinstance(state, dict) and isinstance(state.get('model'), dict):
        state = state['model']  # a training checkpoint: model + optimizer + step
    if not isinstance(state, dict):
        raise CheckpointError(f'{path}: does not hold a state dict')
    state = collections.OrderedDict((k, np.asarray(v, dtype=np.float32)) for k, v in state.items())
    return state, detect_config(state)


def load_weights(path):
    """(state dict name -> float32 array in Paddle naming, config) of a weights file."""
    weights = Weights(path)
    return weights.state, weights.config


def build_model(weights, model_type=None, backbone=None, strict=True, **refine_options):
    """Build MattingRefine / MattingBase from weights, in eval mode.

    Args:
        weights: path to a .pdparams, an official .pth or a train.py checkpoint, or `Weights`.
        model_type: 'refine' or 'base'; default: what the weights hold.
        backbone: if given, must match the weights (a clear error otherwise).
        strict: with model_type='refine' and base-only weights, False leaves the refiner at its
            initialisation (to start refine training) instead of raising.
        refine_options: MattingRefine keyword arguments (backbone_scale, refine_mode, ...);
            refine_kernel_size defaults to the weights' own.
    """
    from .model import MattingBase, MattingRefine
    if not isinstance(weights, Weights):
        weights = Weights(weights)
    state, config = weights.state, weights.config
    weights = weights.path  # how messages name it
    if backbone is not None and backbone != config['backbone']:
        raise CheckpointError(f'{weights}: holds {config["backbone"]} weights, but backbone '
                              f'{backbone} was requested; pass --backbone {config["backbone"]} '
                              f'or other weights')
    model_type = model_type or config['model_type']
    if model_type == 'base':
        model = MattingBase(config['backbone'])
        state = {k: v for k, v in state.items() if not k.startswith('refiner.')}
    else:
        kernel = refine_options.setdefault('refine_kernel_size', config['refine_kernel_size'] or 3)
        if config['refine_kernel_size'] is None and strict:
            raise CheckpointError(f'{weights}: holds MattingBase weights (no refiner); use a '
                                  f'MattingRefine checkpoint, or the base model')
        if config['refine_kernel_size'] not in (None, kernel):
            raise CheckpointError(f'{weights}: refiner has kernel size {config["refine_kernel_size"]}, '
                                  f'but {kernel} was requested')
        model = MattingRefine(config['backbone'], **refine_options)
    wrong_shape = shape_mismatches(model, state)
    if wrong_shape:
        raise CheckpointError(
            f'{weights}: {len(wrong_shape)} tensor(s) of the wrong shape for a '
            f'{config["backbone"]} Matting{model_type.capitalize()}: {_describe(wrong_shape, 3)}; '
            f'the file was saved from another model variant or is damaged: re-convert it from '
            f'the original checkpoint, or use weights of this model')
    with warnings.catch_warnings():
        # Paddle warns once per entry it skips; we report missing entries ourselves below.
        warnings.simplefilter('ignore', UserWarning)
        missing, unexpected = model.set_state_dict(state)
    if unexpected or (missing and strict):
        raise CheckpointError(f'{weights}: could not load: missing {_describe(missing)}; '
                              f'unexpected {_describe(unexpected)}')
    model.eval()
    return model


def shape_mismatches(model, state):
    """'name (expected [..], got [..])' for each entry of `state` whose shape the model's differs."""
    expected = {k: list(v.shape) for k, v in model.state_dict().items()}
    return [f'{k} (expected {expected[k]}, got {list(np.shape(v))})' for k, v in state.items()
            if k in expected and list(np.shape(v)) != expected[k]]

