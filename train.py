"""Train BackgroundMattingV2: the base stage (MattingBase) or the refine stage (MattingRefine).

Options keep the names of the official train_base.py / train_refine.py; defaults that differ
between the stages (batch size, sizes, intervals) follow the chosen --stage.

Examples:

    # Stage 1: MattingBase on VideoMatte240K (512x512 samples, 256-512 px crops)
    python train.py --stage base --dataset-name videomatte240k --model-backbone resnet50 \\
        --model-name mattingbase-resnet50-videomatte240k --epoch-end 8

    # Stage 2: MattingRefine, from the last base checkpoint (a folder means its latest file)
    python train.py --stage refine --dataset-name videomatte240k --model-backbone resnet50 \\
        --model-name mattingrefine-resnet50-videomatte240k \\
        --model-last-checkpoint checkpoint/mattingbase-resnet50-videomatte240k --epoch-end 1

    # Continue an interrupted run where it stopped
    python train.py ...same options... --resume

    # Several GPUs (or CPU processes): one process per device
    python -m paddle.distributed.launch --log_dir log/launch --devices 0,1 train.py ...

    # No data at hand: procedural data, tiny sizes, CPU
    python train.py --stage base --dataset-name synthetic --model-backbone mobilenetv2 \\
        --model-name demo --epoch-end 1 --device cpu --batch-size 2 --sample-size 128 --crop-size 64 128

Exit status: 0 when done, 2 for a bad option, missing data or unusable weights (the message
says which), 128 + signal number when stopped by SIGINT/SIGTERM after saving a checkpoint.
"""
import argparse
import sys
import warnings

# Paddle warns about BatchNorm statistics on every train step; it does not concern training and
# would drown the log lines.
warnings.filterwarnings('ignore', message='When training, we now always track global mean and variance')

__all__ = ['build_parser', 'main']


def build_parser():
    """The argparse parser of train.py (official option names plus the port's additions)."""
    from dataset.augmentation import PLATE_CHANGES, SHADOW_PROB
    from dataset.data_path import add_data_path_arguments
    from dataset.real import KINDS
    from model.options import BACKBONES, REFINE_DEFAULTS, REFINE_KERNEL_SIZES, REFINE_MODES
    from utils.deploy.engine import DEVICES
    from utils.training.loop import STAGES

    p = argparse.ArgumentParser(
        description='Train BackgroundMattingV2 (base or refine stage) with PaddlePaddle.',
        epilog=__doc__.split('\n\n', 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--stage', choices=list(STAGES), default='base',
                   help='base: MattingBase (official train_base.py, the default); refine: MattingRefine '
                        '(train_refine.py)')
    p.add_argument('--dataset-name', required=True,
                   help="data set of the data-path table (videomatte240k, photomatte13k, distinction, ...) "
                        "'synthetic' for procedural data, or 'real' for scenes made of real photographs "
                        "(fetch them first: python -m dataset.prepare)")
    add_data_path_arguments(p)

    m = p.add_argument_group('model')
    m.add_argument('--model-backbone', required=True, choices=BACKBONES)
    m.add_argument('--model-backbone-scale', type=float, default=REFINE_DEFAULTS.backbone_scale,
                   help=f'refine stage (default {REFINE_DEFAULTS.backbone_scale})')
    m.add_argument('--model-refine-mode', default=REFINE_DEFAULTS.refine_mode, choices=REFINE_MODES,
                   help=f'refine stage (default {REFINE_DEFAULTS.refine_mode})')
    m.add_argument('--model-refine-sample-pixels', type=int, default=REFINE_DEFAULTS.refine_sample_pixels,
                   help=f'refine stage, sampling mode (default {REFINE_DEFAULTS.refine_sample_pixels})')
    m.add_argument('--model-refine-threshold', '--model-refine-thresholding', dest='model_refine_threshold',
                   type=float, default=0.7,
                   help='refine stage, thresholding mode (default 0.7, as the official train_refine.py)')
    m.add_argument('--model-refine-kernel-size', type=int, default=REFINE_DEFAULTS.refine_kernel_size,
                   choices=REFINE_KERNEL_SIZES, help=f'refine stage (default {REFINE_DEFAULTS.refine_kernel_size})')
    m.add_argument('--model-name', required=True,
                   help='names checkpoint/<model-name>/ and log/<model-name>/')
    m.add_argument('--model-pretrain-initialization', default=None,
                   help='DeepLabV3 weights to start the base stage from: the .pth of VainF/DeepLabV3Plus-Pytorch '
                        'or a .pdparams made by python -m utils.convert_weights --deeplabv3 BACKBONE')
    m.add_argument('--model-last-checkpoint', default=None,
                   help='weights to start from (matched by name and shape): .pdparams, official .pth, '
                        'a training checkpoint, or a checkpoint folder (its latest checkpoint)')
    m.add_argument('--resume', action='store_true',
                   help='continue from checkpoint/<model-name>/latest: weights, optimizer, step, learning '
                        'rates and RNG states (starts a new run if there is none)')

    t = p.add_argument_group('training')
    t.add_argument('--batch-size', type=int, default=None,
                   help='total over all processes (default: base 8, refine 4)')
    t.add_argument('--num-workers', type=int, default=None, help='DataLoader workers (default: min(16, CPUs))')
    t.add_argument('--epoch-start', type=int, default=0, help='first epoch of a new run (default 0)')
    t.add_argument('--epoch-end', type=int, required=True, help='train up to this epoch (exclusive)')
    t.add_argument('--max-steps', type=int, default=0,
                   help='stop (with a checkpoint) once this many steps are done in total; 0: no limit')
    t.add_argument('--max-seconds', type=float, default=0,
                   help='stop (with a checkpoint) after the first step that ends this many seconds after the '
                        'start, on every process at the same step; 0: no limit (default 0)')
    t.add_argument('--sample-size', type=int, nargs='+', default=None, metavar='PX',
                   help='H [W] of the dataset samples before cropping (default: base 512, refine 2048)')
    t.add_argument('--crop-size', type=int, nargs=2, default=None, metavar=('MIN', 'MAX'),
                   help='per-step random crop side range (default: base 256 512, refine 1024 2048)')
    t.add_argument('--lr-scale', type=float, default=1.0,
                   help='multiplies the official per-part learning rates (default 1; ignored by --resume, '
                        'which restores the saved ones)')
    t.add_argument('--extra-augmentation', action='store_true',
                   help='add plate exposure changes and JPEG artifacts to the official augmentation')
    t.add_argument('--plate-change', choices=list(PLATE_CHANGES), default='official',
                   help='how far the plate may drift from the background behind the subject: official '
                        '(hand-held plate shot apart), light (fixed camera settings, aligned plate; '
                        'keeps faint differences meaningful) or locked (tripod, locked exposure, low noise: '
                        'the plate differs by about what the evaluation\'s plates do) (default: official)')
    t.add_argument('--shadow-prob', type=float, default=SHADOW_PROB, metavar='P',
                   help='how often a training sample gets a soft shadow cast on its background, a difference '
                        'from the plate that is not the subject (0 to 1; default: %(default)g, the official '
                        'recipe). A shadow looks like a dark translucent layer: 0 leaves partial alpha unopposed')
    t.add_argument('--real-kinds', default='', metavar='KIND=W,...',
                   help='--dataset-name real: change how often each kind of foreground layer is drawn in '
                        'the training scenes, e.g. translucent=0.25 (relative weights; kinds and defaults: '
                        + ', '.join(f'{k}={v:g}' for k, v in KINDS.items()) + '; default: unchanged)')
    t.add_argument('--loss-unknown-weight', type=float, default=0.0,
                   help='add this times the mean alpha L1 error over the evaluation trimap\'s unknown region '
                        'to the loss (0: the official loss only; default 0)')
    t.add_argument('--loss-foreground-weight', type=float, default=0.0,
                   help='add this times the mean alpha L1 error over the evaluation trimap\'s definite '
                        'foreground to the loss (0: off; default 0)')
    t.add_argument('--loss-error-weight', type=float, default=0.0,
                   help='add the error-prediction term this many times more, with its target detached, so '
                        'that the patches refined in sampling mode are better chosen (0: off; default 0)')
    t.add_argument('--valid-samples', type=int, default=50, help='size of the fixed validation subset (default 50)')
    t.add_argument('--synthetic-length', type=int, default=256,
                   help='training samples per epoch of --dataset-name synthetic or real (default 256)')
    t.add_argument('--seed', type=int, default=0, help='seeds initialisation, sample order and augmentation (default 0)')
    t.add_argument('--device', choices=DEVICES, default=None, help='default: gpu if available')
    t.add_argument('--amp', action=argparse.BooleanOptionalAction, default=None,
                   help='mixed precision (default: on for gpu)')

    lg = p.add_argument_group('logging and checkpoints')
    lg.add_argument('--log-train-loss-interval', type=int, default=10,
                    help='steps between loss logs and console lines (default 10)')
    lg.add_argument('--log-train-images-interval', type=int, default=None, help='default: base 2000, refine 1000')
    lg.add_argument('--log-valid-interval', type=int, default=None, help='default: base 5000, refine 2000')
    lg.add_argument('--checkpoint-interval', type=int, default=None, help='default: base 5000, refine 2000')
    lg.add_argument('--keep-checkpoints', type=int, default=0,
                    help='keep only the newest N mid-epoch checkpoints (0: keep all)')
    lg.add_argument('--checkpoint-dir', default='checkpoint', help='checkpoints go to <checkpoint-dir>/<model-name>/')
    lg.add_argument('--log-dir', default='log', help='VisualDL logs go to <log-dir>/<model-name>/')
    lg.add_argument('--no-progress', action='store_true', help='no tqdm progress bar')
    return p


def main(argv=None):
    """Parse `argv`, train, and return the exit status (see the module docstring)."""
    args = build_parser().parse_args(argv)
    import paddle
    from dataset.data_path import DataPathError
    from model.weights import CheckpointError
    from utils.training.loop import TrainingError, train

    if args.device is None:
        args.device = 'gpu' if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0 else 'cpu'
    if args.amp is None:
        args.amp = args.device == 'gpu'
    try:
        result = train(args)
    except (TrainingError, CheckpointError, DataPathError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return 128 + result.stopped_by if result.stopped_by else 0


if __name__ == '__main__':
    sys.exit(main())
