"""Training checkpoints: model + optimizer + loss scaler + progress + RNG states, written atomically.

Layout under ``checkpoint/<model-name>/``::

    epoch-0-step-2000.pdparams   # every --checkpoint-interval steps (step = steps completed)
    epoch-0.pdparams             # at the end of every epoch (as the official scripts)
    latest                       # text: file name of the newest checkpoint above

A checkpoint file is a dict saved with ``paddle.save``::

    {'model': state dict, 'optimizer': optimizer state keyed by structured parameter names,
     'scaler': GradScaler state or {}, 'rng': pickled (python, numpy, paddle) RNG states as a
     uint8 array, 'meta': {'step', 'epoch', 'batch', 'stage', 'lrs', 'args', ...}}

Its 'model' entry makes it loadable anywhere weights are (``model.load_weights``
treats a dict with a 'model' dict as a training checkpoint), e.g. by predict.py or as the
``--model-last-checkpoint`` of the next training stage.

Why the optimizer state is re-keyed: Paddle names optimizer accumulators after the
auto-generated parameter names (``conv2d_12.w_0_moment1_0``), which depend on how many
layers the process created before the model. A resumed run (or a second model in the same
process) would number them differently and silently start Adam from zero; structured names
(``backbone.features.0.0.weight``) are stable.

Files are written to a temporary file and renamed (``utils.image_io.atomic_write_bytes``), so
an interrupted save never leaves a truncated checkpoint, and the ``latest`` pointer is only
moved once the file it names is complete.
"""
import io
import os
import pickle
import random
import re

import numpy as np
import paddle

from model.weights import CheckpointError
from utils.image_io import atomic_write_bytes

__all__ = ['LATEST', 'checkpoint_name', 'get_rng_state', 'set_rng_state', 'portable_optimizer_state',
           'restore_optimizer_state', 'save_checkpoint', 'load_checkpoint', 'latest_checkpoint',
           'resolve_checkpoint_path', 'prune_checkpoints']

LATEST = 'latest'
_STEP_FILE = re.compile(r'^epoch-(\d+)-step-(\d+)\.pdparams$')


def checkpoint_name(epoch, step=None):
    """'epoch-{epoch}-step-{step}.pdparams' (mid-epoch) or 'epoch-{epoch}.pdparams' (end of epoch)."""
    return f'epoch-{epoch}.pdparams' if step is None else f'epoch-{epoch}-step-{step}.pdparams'


def get_rng_state():
    """The global RNG states of python `random`, numpy and paddle (current device), as a uint8 array.

    Pickled into bytes because paddle.save cannot store the RNG state objects directly; the
    array form is what paddle.save accepts.
    """
    state = {'python': random.getstate(), 'numpy': np.random.get_state(), 'paddle': paddle.get_rng_state()}
    return np.frombuffer(pickle.dumps(state), dtype=np.uint8).copy()


def set_rng_state(blob):
    """Restore the states saved by `get_rng_state`. A paddle state of another device kind is skipped."""
    state = pickle.loads(np.asarray(blob, dtype=np.uint8).tobytes())
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    try:
        paddle.set_rng_state(state['paddle'])
    except (ValueError, RuntimeError):  # e.g. saved on GPU, resumed on CPU: nothing to restore to
        pass


def _param_names(model):
    """{paddle parameter name: structured name} for the model's parameters."""
    return {p.name: name for name, p in model.named_parameters()}


def _split_key(key, names):
    """'conv2d_3.w_0_moment1_0' -> ('conv2d_3.w_0', 'moment1_0') using the known parameter names."""
    # Longest match first, so 'linear_1.w_0' never claims a key of 'linear_1.w_01'.
    for name in sorted((n for n in names if key.startswith(n + '_')), key=len, reverse=True):
        return name, key[len(name) + 1:]
    return None, None


def portable_optimizer_state(optimizer, model):
    """Optimizer state dict with accumulator keys renamed to '<structured name>::<accumulator>'.

    Keys that belong to no parameter of `model` (e.g. 'LR_Scheduler') are kept unchanged.
    """
    names = _param_names(model)
    out = {}
    for key, value in optimizer.state_dict().items():
        param, acc = _split_key(key, names) if isinstance(key, str) else (None, None)
        out[f'{names[param]}::{acc}' if param else key] = value
    return out


def restore_optimizer_state(optimizer, model, state):
    """Load a `portable_optimizer_state` dict into `optimizer` (built over `model`'s parameters).

    Raises CheckpointError if the state does not cover every trainable parameter (e.g. a
    checkpoint of another backbone or stage), rather than silently restarting Adam.
    """
    by_structured = {name: p.name for name, p in model.named_parameters()}
    converted, covered = {}, set()
    for key, value in state.items():
        if isinstance(key, str) and '::' in key:
            structured, acc = key.split('::', 1)
            if structured not in by_structured:
                raise CheckpointError(f'optimizer state names parameter {structured!r}, which the model '
                                      f'does not have (checkpoint of another model?)')
            converted[f'{by_structured[structured]}_{acc}'] = value
            covered.add(structured)
        else:
            converted[key] = value
    missing = [n for n, p in model.named_parameters() if not p.stop_gradient and n not in covered]
    # An empty state (saved before the first step) is fine; a partial one is not.
    if covered and missing:
        raise CheckpointError(f'optimizer state has no entry for {len(missing)} parameters '
                              f'(e.g. {missing[0]}); was it saved for another stage or backbone?')
    optimizer.set_state_dict(converted)


def save_checkpoint(directory, filename, model, optimizer, meta, scaler=None, update_latest=True):
    """Write a training checkpoint atomically and (by default) point `latest` at it.

    Args:
        directory: checkpoint folder, created if missing.
        filename: e.g. `checkpoint_name(epoch, step)`.
        model: the (unwrapped) model; optimizer: its optimizer; scaler: paddle.amp.GradScaler or None.
        meta: plain python data (step, epoch, batch, stage, lrs, args, ...).
    Returns:
        The path written.
    """
    os.makedirs(directory, exist_ok=True)
    state = {
        'model': model.state_dict(),
        'optimizer': portable_optimizer_state(optimizer, model),
        'scaler': scaler.state_dict() if scaler is not None else {},
        'rng': get_rng_state(),
        'meta': dict(meta),
    }
    buffer = io.BytesIO()
    paddle.save(state, buffer)
    path = os.path.join(directory, filename)
    atomic_write_bytes(path, buffer.getvalue())
    if update_latest:
        atomic_write_bytes(os.path.join(directory, LATEST), (filename + '\n').encode('utf-8'))
    return path


def latest_checkpoint(directory):
    """Path of the checkpoint that `directory/latest` names, or None if there is no pointer.

    Raises CheckpointError if the pointer names a file that no longer exists.
    """
    pointer = os.path.join(directory, LATEST)
    if not os.path.isfile(pointer):
        return None
    with open(pointer, encoding='utf-8') as f:
        name = f.read().strip()
    path = os.path.join(directory, name)
    if not name or not os.path.isfile(path):
        raise CheckpointError(f'{pointer} names {name!r}, which does not exist in {directory}; '
                              f'write the name of an existing checkpoint file into it')
    return path


def resolve_checkpoint_path(path):
    """A checkpoint file path as given, or the latest checkpoint of a checkpoint folder."""
    if os.path.isdir(path):
        latest = latest_checkpoint(path)
        if latest is None:
            raise CheckpointError(f'{path}: a folder without a "{LATEST}" checkpoint pointer; '
                                  f'pass a checkpoint file instead')
        return latest
    if not os.path.isfile(path):
        raise CheckpointError(f'{path}: no such checkpoint file or folder')
    return path


def load_checkpoint(path):
    """Read a training checkpoint written by `save_checkpoint` (file or checkpoint folder).

    Returns the dict (model/optimizer values as paddle tensors). Raises CheckpointError for a
    file that is not a training checkpoint (e.g. bare weights), naming what it holds.
    """
    path = resolve_checkpoint_path(path)
    try:
        state = paddle.load(path)
    except Exception as e:  # paddle raises assorted types for foreign or truncated files
        raise CheckpointError(f'{path}: not a readable Paddle checkpoint ({type(e).__name__}: {e})') from None
    if not isinstance(state, dict) or not all(k in state for k in ('model', 'optimizer', 'meta')):
        raise CheckpointError(f'{path}: holds weights only, not a training checkpoint (no optimizer '
                              f'state or step); start from it with --model-last-checkpoint instead '
                              f'of --resume')
    return state


def prune_checkpoints(directory, keep):
    """Delete all but the newest `keep` mid-epoch checkpoints (end-of-epoch files are kept).

    `keep` <= 0 keeps everything. The file `latest` points to is never deleted. (Paddle
    Inference exports of a checkpoint live in the user's cache, bounded there; see
    utils.deploy.export.cached_export.)
    """
    if keep <= 0 or not os.path.isdir(directory):
        return
    current = latest_checkpoint(directory)
    found = []
    for name in os.listdir(directory):
        match = _STEP_FILE.match(name)
        if match:
            found.append((int(match.group(2)), name))
    for _, name in sorted(found)[:-keep]:
        path = os.path.join(directory, name)
        if current is None or os.path.abspath(path) != os.path.abspath(current):
            os.remove(path)
