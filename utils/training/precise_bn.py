"""Precise BatchNorm statistics for a trained network.

During training every BatchNorm layer keeps running averages of its batch statistics with
momentum 0.1 (the official recipe), so the statistics a checkpoint is evaluated with are those of
its last ten or so batches: with batches of 2-4 random crops they jump from one checkpoint to the
next. Measured on the real-photo validation set (`tools/train_real.sh` run 4, steps 400 and 700):
SAD 18.30 and 19.10 with the saved statistics, 18.35 and 18.43 after recomputing them as the plain
average over 100 training batches: the scores stop depending on which batches came last.

`recompute_bn_statistics` does that recomputation: the network runs in training mode, without
gradients, over batches drawn like the training run's own (same data, crop range and
augmentation; another seed), and each BatchNorm layer's running mean and variance become the
average over all those batches. Nothing else changes: the learned weights are the checkpoint's.
"""
import types
import warnings

import paddle

__all__ = ['batch_norm_layers', 'recompute_bn_statistics', 'checkpoint_batches', 'precise_bn_weights',
           'precise_bn_state']

# Seed of the recomputation's batches: scenes no training run of seed 0..9 draws first.
PRECISE_BN_SEED = 20_231


def batch_norm_layers(model):
    """The BatchNorm layers of `model`, in order."""
    return [layer for layer in model.sublayers() if isinstance(layer, paddle.nn.layer.norm._BatchNormBase)]


def recompute_bn_statistics(model, batches, progress=False):
    """Replace every BatchNorm layer's running mean/variance by the average over `batches`.

    Args:
        model: MattingBase / MattingRefine (any Layer taking (src, bgr)).
        batches: iterable of (src, bgr, ...) NCHW float32 arrays or tensors; its length (when it
            has one) sizes the progress bar.
        progress: show a tqdm bar.
    Returns:
        the number of batches used. The model is left in eval mode.
    """
    from tqdm import tqdm
    layers = batch_norm_layers(model)
    saved = [layer._momentum for layer in layers]
    for layer in layers:
        layer._mean.set_value(paddle.zeros_like(layer._mean))
        layer._variance.set_value(paddle.zeros_like(layer._variance))
    # Training mode throughout, ASPP's dropout included, as in the training run the statistics
    # stand for (with the dropout off, run 4's step 700 scored the same to 0.01 SAD).
    model.train()
    count = 0
    try:
        with paddle.no_grad(), warnings.catch_warnings():
            # Paddle warns on every training-mode BatchNorm call that it tracks statistics.
            warnings.filterwarnings('ignore', message='When training, we now always track')
            total = len(batches) if hasattr(batches, '__len__') else None
            for src, bgr, *_ in tqdm(batches, total=total, desc='BatchNorm statistics', disable=not progress):
                # running = m * running + (1 - m) * batch with m = k / (k + 1): the mean of k + 1 batches
                for layer in layers:
                    layer._momentum = count / (count + 1.0)
                model(paddle.to_tensor(src), paddle.to_tensor(bgr))
                count += 1
    finally:
        for layer, momentum in zip(layers, saved):
            layer._momentum = momentum
        model.eval()
    if count == 0:
        raise ValueError('no batches to compute BatchNorm statistics from')
    return count


def checkpoint_batches(meta_args, count, seed=PRECISE_BN_SEED):
    """`count` batches drawn like the training run of a train.py checkpoint (its saved options).

    Same data set, sample size, crop range, augmentation and plate changes, the run's total
    batch size, and another seed. Returns a `dataset.batches.MattingBatches`.
    """
    from dataset.batches import MattingBatches
    from utils.training.loop import run_augment, run_datasets
    from dataset.augmentation import SHADOW_PROB
    # checkpoints written before --plate-change / --real-kinds / --shadow-prob existed trained with
    # the official plate changes / the default foreground mix / the official shadows
    a = types.SimpleNamespace(**{'plate_change': 'official', 'real_kinds': '', 'shadow_prob': SHADOW_PROB,
                                 **meta_args})
    train_set, _ = run_datasets(a, seed=seed, synthetic_length=count * a.batch_size)
    return MattingBatches(train_set, a.batch_size, seed=seed, shuffle=False, augment=run_augment(a))


def precise_bn_weights(checkpoint, count, num_workers=1, progress=False):
    """The model weights of a train.py checkpoint with recomputed BatchNorm statistics.

    Returns the model's state dict (name -> tensor), ready for `utils.convert_weights.save_pdparams`.
    """
    from model.weights import CheckpointError
    from utils.training.checkpoint import load_checkpoint
    try:
        state = load_checkpoint(checkpoint)
    except CheckpointError as e:
        # the first clause names the file and what it holds; the rest is advice for train.py
        raise CheckpointError(f'{str(e).split(";")[0]}; recomputing BatchNorm statistics needs a train.py '
                              f'checkpoint, whose saved options say how to draw the batches') from None
    return precise_bn_state(state['model'], state['meta']['args'], count, num_workers, progress)


def precise_bn_state(weights, meta_args, count, num_workers=1, progress=False):
    """`weights` (a model state dict of the run that saved `meta_args`, e.g. the mean of its
    checkpoints) with BatchNorm statistics recomputed over `count` batches drawn like the run's.

    Returns the model's state dict (name -> tensor).
    """
    from utils.training.loop import new_model
    model = new_model(types.SimpleNamespace(**meta_args))
    model.set_state_dict({k: v if isinstance(v, paddle.Tensor) else paddle.to_tensor(v) for k, v in weights.items()})
    batches = checkpoint_batches(meta_args, count)
    paddle.seed(PRECISE_BN_SEED)  # the dropout masks: the same statistics every time
    loader = paddle.io.DataLoader(batches, batch_size=None, num_workers=num_workers)
    recompute_bn_statistics(model, loader, progress=progress)
    return model.state_dict()
