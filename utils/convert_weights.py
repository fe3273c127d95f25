"""Convert official BackgroundMattingV2 PyTorch checkpoints to Paddle, without torch.

Command line:
    python -m utils.convert_weights pytorch_mobilenetv2.pth weights/mobilenetv2_official.pdparams
    python -m utils.convert_weights checkpoint/NAME/epoch-3.pdparams weights.pdparams
    python -m utils.convert_weights checkpoint/NAME/epoch-3.pdparams weights.pdparams --precise-bn 100
    python -m utils.convert_weights checkpoint/NAME/epoch-*-step-*.pdparams weights.pdparams --precise-bn 100
    python -m utils.convert_weights checkpoint/NAME/epoch-*-step-*.pdparams weights.pdparams --precise-bn 100 \
        --blend start.pdparams --blend-fraction 0.5
    python -m utils.convert_weights deeplabv3_mobilenetv2.pth start.pdparams --deeplabv3 mobilenetv2

Reading and mapping the weights is `model.weights`; this module writes the result.
"""
import argparse
import collections
import io
import sys

import numpy as np

from model import BACKBONES, MattingBase
from model.weights import CheckpointError, convert_deeplabv3_state_dict, load_weights, read_torch_checkpoint
from utils.image_io import atomic_write_bytes
from utils.training.averaging import BLEND_FRACTION


def save_pdparams(state_dict, path):
    """paddle.save a dict of arrays/tensors atomically (a crash never leaves a half-written file)."""
    import paddle
    buffer = io.BytesIO()
    paddle.save({k: paddle.to_tensor(v) if isinstance(v, np.ndarray) else v
                 for k, v in state_dict.items()}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def convert_checkpoint(src, dst, deeplabv3_backbone=None, precise_bn=0, progress=False):
    """Convert an official checkpoint file to .pdparams; returns the detected config.

    `src` may also be a Paddle file: a training checkpoint of train.py (model, optimizer, step,
    ...) is reduced to the model weights, the small file predict.py and eval.py need; with
    `precise_bn` > 0 its BatchNorm statistics are recomputed over that many batches drawn like
    its run's (``utils.training.precise_bn``).
    With `deeplabv3_backbone`, `src` is a pretrained DeepLabV3 checkpoint: its entries are
    renamed and the ones that match MattingBase(backbone) are written.
    """
    if not deeplabv3_backbone:
        state, config = load_weights(src)  # official .pth, or Paddle weights / training checkpoint
        if precise_bn:
            from utils.training.precise_bn import precise_bn_weights
            state = precise_bn_weights(src, precise_bn, progress=progress)
        save_pdparams(state, dst)
        return config
    state = convert_deeplabv3_state_dict(read_torch_checkpoint(src), deeplabv3_backbone)
    expected = MattingBase(deeplabv3_backbone).state_dict()
    state = collections.OrderedDict(
        (k, v) for k, v in state.items()
        if k in expected and list(expected[k].shape) == list(v.shape))
    print(f'DeepLabV3 weights: {len(state)}/{len(expected)} MattingBase entries matched')
    config = {'backbone': deeplabv3_backbone, 'model_type': 'base', 'refine_kernel_size': None,
              'matched': len(state), 'total': len(expected)}
    save_pdparams(state, dst)
    return config


def average_to_pdparams(srcs, dst, precise_bn=0, progress=False, blend_with=None, blend_fraction=BLEND_FRACTION):
    """Write the mean weights of train.py checkpoints `srcs` of one network to `dst` (.pdparams),
    moved `blend_fraction` of the way to the weights file `blend_with` if given, with BatchNorm
    statistics recomputed over `precise_bn` batches if > 0 (see ``utils.training.averaging``).
    Returns the config of the newest checkpoint's weights."""
    from utils.training.averaging import average_checkpoints, blend
    state, meta = average_checkpoints(srcs)
    if blend_with:
        state = blend(state, blend_with, blend_fraction)
    if precise_bn:
        from utils.training.precise_bn import precise_bn_state
        state = precise_bn_state(state, meta['args'], precise_bn, progress=progress)
    save_pdparams(state, dst)
    return load_weights(dst)[1]


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert an official BackgroundMattingV2 PyTorch checkpoint to .pdparams '
                    '(no torch needed for files saved by torch >= 1.6), or reduce a train.py '
                    'checkpoint to its model weights.')
    parser.add_argument('src', nargs='+', help='official checkpoint (e.g. pytorch_mobilenetv2.pth) or a '
                                               'train.py checkpoint (checkpoint/NAME/epoch-*.pdparams); several '
                                               'train.py checkpoints of one run: their mean weights')
    parser.add_argument('dst', help='output .pdparams path')
    parser.add_argument('--deeplabv3', metavar='BACKBONE', choices=BACKBONES,
                        help='src is pretrained DeepLabV3 weights for this backbone (training start point)')
    parser.add_argument('--precise-bn', type=int, default=0, metavar='BATCHES',
                        help='src is a train.py checkpoint: recompute its BatchNorm statistics as the average '
                             'over this many batches drawn like its run\'s (see utils.training.precise_bn); '
                             '0: keep the saved running averages (default 0)')
    parser.add_argument('--blend', metavar='WEIGHTS',
                        help='move the train.py checkpoints\' (mean) weights toward these weights of the same '
                             'network, usually the ones the run started from (needs --precise-bn)')
    parser.add_argument('--blend-fraction', type=float, metavar='F',
                        help='with --blend: the result is (1 - F) x the checkpoints + F x WEIGHTS '
                             f'(default {BLEND_FRACTION:g})')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    if args.blend and (args.deeplabv3 or not args.precise_bn):
        parser.error('--blend takes train.py checkpoints and --precise-bn BATCHES (a blend\'s BatchNorm '
                     'statistics belong to neither network: they must be recomputed)')
    if args.blend_fraction is not None and not args.blend:
        parser.error('--blend-fraction goes with --blend WEIGHTS')
    args.blend_fraction = BLEND_FRACTION if args.blend_fraction is None else args.blend_fraction
    if not 0 <= args.blend_fraction <= 1:
        parser.error(f'--blend-fraction must be between 0 and 1, got {args.blend_fraction:g}')
    if args.precise_bn < 0 or (args.precise_bn and args.deeplabv3):
        parser.error('--precise-bn takes a positive number of batches and a train.py checkpoint, not --deeplabv3')
    if len(args.src) > 1 and args.deeplabv3:
        parser.error('--deeplabv3 converts one file; several sources are train.py checkpoints to average')
    try:
        if len(args.src) > 1 or args.blend:
            config = average_to_pdparams(args.src, args.dst, args.precise_bn, progress=not args.no_progress,
                                         blend_with=args.blend, blend_fraction=args.blend_fraction)
        else:
            config = convert_checkpoint(args.src[0], args.dst, args.deeplabv3, precise_bn=args.precise_bn,
                                        progress=not args.no_progress)
    except CheckpointError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    desc = f"{config['backbone']} Matting{config['model_type'].capitalize()}"
    if config.get('refine_kernel_size'):
        desc += f", refiner kernel size {config['refine_kernel_size']}"
    what = args.src[0] if len(args.src) == 1 else f'the mean of {len(args.src)} checkpoints'
    if args.blend:
        what += f' blended {args.blend_fraction:g} toward {args.blend}'
    print(f'Converted {what} ({desc}) -> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
