"""The mean of a training run's weights over several of its checkpoints.

Fine-tuning with batches of 4 random crops moves the weights a little with every step, and the
scores of the checkpoints of one run jump by more than the run gains: on the real-photo
validation set, run 11's checkpoints at steps 1,000 and 1,500 both scored SAD 18.23, the mean of
its 11 checkpoints from step 1,000 to 1,500 (every 50 steps) 17.85, with solid faces on the
captures where step 1,500 alone had holes. Averaging the weights along the end of a run (as
stochastic weight averaging does) keeps what the steps agree on and cancels their noise.

The BatchNorm running statistics are averaged too, but they do not belong to the mean weights:
recompute them (``utils.training.precise_bn``, ``convert_weights --precise-bn``).

`blend` goes halfway (or any fraction of the way) back from a run's mean to the weights it
started from, as WiSE-FT does for fine-tuned networks: run 12's mean over steps 2,650-3,600 scored
real-photo SAD 17.06 but notched the faces of the real captures where the frame is close to the
plate; the half-and-half blend with its start scored 17.12, and 7.10 on the synthetic hold-out
(mean 7.14, start 7.35), with faces as solid as the start's.
"""
import numpy as np

from model.weights import CheckpointError

__all__ = ['average_checkpoints', 'blend', 'BLEND_FRACTION']

# train.py options that decide the network's layers: checkpoints to average must agree on them.
MODEL_OPTIONS = ('stage', 'model_backbone', 'model_refine_kernel_size')
# How far `blend` goes back to the start weights unless told otherwise (convert_weights --blend-fraction).
BLEND_FRACTION = 0.5


def _shapes(state):
    """name -> shape: two states hold the same network if these are equal."""
    return {k: np.shape(v) for k, v in state.items()}


def average_checkpoints(paths):
    """The mean model weights of train.py checkpoints of one network.

    Args:
        paths: checkpoint files (or checkpoint folders: their latest file).
    Returns:
        (state, meta): name -> float32 array (integer entries from the newest checkpoint), and
        the `meta` of the newest (highest step) checkpoint, whose saved options describe the run.
    Raises:
        CheckpointError (one line) for no paths, a file that is not a training checkpoint, or
        checkpoints of different networks.
    """
    from utils.training.checkpoint import load_checkpoint, resolve_checkpoint_path
    if not paths:
        raise CheckpointError('no checkpoints to average')
    total, first, newest = None, None, None
    for path in paths:
        state = load_checkpoint(path)
        model = {k: v.numpy() for k, v in state['model'].items()}
        meta = state['meta']
        if total is None:
            total = {k: v.astype(np.float64) for k, v in model.items()}
            first = (path, meta, _shapes(model))
        else:
            options = [o for o in MODEL_OPTIONS if meta['args'].get(o) != first[1]['args'].get(o)]
            if _shapes(model) != first[2] or options:
                differ = f'--{options[0].replace("_", "-")}' if options else 'layers'
                raise CheckpointError(f'{resolve_checkpoint_path(path)} and {resolve_checkpoint_path(first[0])} '
                                      f'hold different networks ({differ} differ); average checkpoints of one run')
            for k, v in model.items():
                total[k] += v
        if newest is None or meta.get('step', 0) >= newest[0].get('step', 0):
            newest = (meta, model)
    meta, model = newest
    mean = {k: (total[k] / len(paths)).astype(np.float32) if np.issubdtype(model[k].dtype, np.floating)
            else model[k] for k in model}
    return mean, meta


def blend(state, path, fraction=BLEND_FRACTION):
    """(1 - fraction) x `state` + fraction x the weights in `path`, entry by entry.

    Args:
        state: name -> array, e.g. the mean of `average_checkpoints`.
        path: weights of the same network (.pdparams, train.py checkpoint or official .pth),
            usually the ones its run started from.
        fraction: in [0, 1]; 0 gives `state`, 1 the weights of `path`.
    Returns:
        name -> float32 array (integer entries from `state`). BatchNorm statistics are blended
        like the rest and belong to neither network: recompute them.
    Raises:
        CheckpointError (one line) if `path` holds another network.
    """
    from model.weights import load_weights
    if not 0 <= fraction <= 1:
        raise CheckpointError(f'blend fraction must be between 0 and 1, got {fraction:g}')
    other, _ = load_weights(path)
    ours, theirs = _shapes(state), _shapes(other)
    if ours != theirs:
        differ = sorted(set(ours) ^ set(theirs)) or [k for k in ours if ours[k] != theirs[k]]
        raise CheckpointError(f'{path} holds another network than the checkpoints (first difference: {differ[0]}); '
                              f'blend with the weights their run started from')
    return {k: ((1 - fraction) * np.asarray(v, np.float64) + fraction * np.asarray(other[k], np.float64)).astype(np.float32)
            if np.issubdtype(np.asarray(v).dtype, np.floating) else v
            for k, v in state.items()}
