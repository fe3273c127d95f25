"""Evaluate BackgroundMattingV2 with the paper's protocol (SAD, MSE, Grad, Conn, FG-MSE).

Run the network on fixed PhotoMatte85 composites (made once from --seed and cached):

    python eval.py --weights checkpoint/pytorch_resnet50.pth \\
        --data-dir data/PhotoMatte85 --bgr-dir data/Backgrounds

Score existing predictions (pred_dir/pha/<name>.png, optional pred_dir/fgr/<name>.png):

    python eval.py --pred-dir image/my_predictions --data-dir data/PhotoMatte85
    python eval.py --pred-dir image/aim_predictions --gt-dir data/AIM   # pha/fgr layout

Other datasets in pha/fgr layout (AIM, Distinctions) are composited the same way with
--gt-dir DIR. --prepare-only writes the composites and prints their folder, so another
implementation can run on exactly the same inputs and be scored with --pred-dir.

Results: a table on stdout, <log-dir>/<run-name>.csv (per image) and .json (summary).
The protocol is described in utils/evaluation/composites.py and protocol.py, the metrics in
utils/evaluation/metrics.py and the trimaps in utils/evaluation/trimap.py.
"""
import argparse
import os
import sys

from dataset.prepare import VALIDATION_PHOTOS, VALIDATION_ROOT
from model.options import MODEL_TYPES, REFINE_MODES
from utils.deploy.engine import DEVICES, ENGINES
from utils.evaluation import (CompositeConfig, EvaluationError, ImageReadError, ModelConfig,
                              evaluate_model, evaluate_predictions, folder_samples,
                              photomatte85_samples, prepare_composites)


def build_parser():
    """The command-line interface of eval.py."""
    parser = argparse.ArgumentParser(
        description='Evaluate BackgroundMattingV2 with the paper protocol (SAD, MSE, Grad, Conn, FG-MSE).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    data = parser.add_argument_group('data')
    data.add_argument('--dataset', choices=['photomatte85', 'folder', 'real'], default=None,
                      help='photomatte85: a folder of RGBA PNGs (--data-dir); folder: pha/fgr layout '
                           '(--gt-dir); real: the real-photo validation set of `python -m dataset.prepare` '
                           f'(--gt-dir {VALIDATION_ROOT} on the validation photos {VALIDATION_PHOTOS}). '
                           'Default: folder if --gt-dir is given, else photomatte85')
    data.add_argument('--data-dir', default='data/PhotoMatte85',
                      help='PhotoMatte85 folder of RGBA PNG foregrounds (alpha channel = matte)')
    data.add_argument('--gt-dir', default=None,
                      help='ground truth in pha/fgr layout: GT_DIR/pha/<name>, GT_DIR/fgr/<name>')
    data.add_argument('--bgr-dir', default=None,
                      help='folder of background images to composite onto (default data/Backgrounds; '
                           f'with --dataset real {VALIDATION_PHOTOS})')
    data.add_argument('--pred-dir', default=None,
                      help='score existing predictions PRED_DIR/pha/<name> (and PRED_DIR/fgr/<name>) '
                           'instead of running a network')
    data.add_argument('--trimap-dir', default=None,
                      help='read trimaps (0/128/255, <name>.png) from here instead of generating them')
    data.add_argument('--limit', type=int, default=None, help='evaluate only the first N images (by name)')

    protocol = parser.add_argument_group('composite protocol')
    protocol.add_argument('--seed', type=int, default=0, help='seed of the fixed composites')
    protocol.add_argument('--shift', type=float, default=0.3,
                          help='max background misalignment in pixels (each axis, uniform)')
    protocol.add_argument('--gamma', type=float, nargs=2, default=[0.85, 1.15], metavar=('MIN', 'MAX'),
                          help='range of the background gamma change')
    protocol.add_argument('--noise-std', type=float, default=0.01,
                          help='std of the Gaussian noise added to the background plate ([0, 1] scale)')
    protocol.add_argument('--cache-dir', default='log/eval_cache', help='where composites are cached')
    protocol.add_argument('--prepare-only', action='store_true',
                          help='only write the composites and print their folder')

    model = parser.add_argument_group('model')
    model.add_argument('--weights', default=None, help='.pdparams or official .pth weights')
    model.add_argument('--model-type', choices=MODEL_TYPES, default=None,
                       help='default: what the weights hold (the paper evaluates MattingRefine)')
    model.add_argument('--backbone-scale', type=float, default=ModelConfig.backbone_scale)
    model.add_argument('--refine-mode', choices=REFINE_MODES, default=ModelConfig.refine_mode)
    model.add_argument('--refine-sample-pixels', type=int, default=ModelConfig.refine_sample_pixels,
                       help='pixels refined in sampling mode (320,000 = 20,000 4x4 patches, the '
                            "paper's photo setting)")
    model.add_argument('--refine-threshold', type=float, default=ModelConfig.refine_threshold)
    model.add_argument('--engine', choices=ENGINES, default=ModelConfig.engine,
                       help='dygraph: the Paddle model run eagerly (default); onnxruntime, '
                            'openvino, inference (Paddle Inference): the exported graph; auto: the '
                            'fastest installed engine on the CPU (what predict.py runs), else dygraph')
    model.add_argument('--device', choices=DEVICES, default=None,
                       help="unset: Paddle's default device; gpu needs the GPU build of PaddlePaddle")
    model.add_argument('--save-pred', default=None, metavar='DIR',
                       help='also save the 8-bit predictions as DIR/pha/<name>.png, DIR/fgr/<name>.png')

    output = parser.add_argument_group('output')
    output.add_argument('--log-dir', default='log', help='where the CSV and JSON reports go')
    output.add_argument('--run-name', default=None,
                        help='report file name stem (default: eval-<dataset>-<weights or pred dir name>)')
    output.add_argument('--no-progress', action='store_true', help='hide the tqdm progress bars')
    return parser


def main(argv=None):
    """Parse `argv`, run the evaluation and return the process exit code (2 on bad input)."""
    args = build_parser().parse_args(argv)
    dataset = args.dataset or ('folder' if args.gt_dir else 'photomatte85')
    if dataset == 'real':
        # a folder data set with known places; reports and caches are told apart by the name
        args.gt_dir = args.gt_dir or VALIDATION_ROOT
        args.bgr_dir = args.bgr_dir or VALIDATION_PHOTOS
        if not os.path.isdir(os.path.join(args.gt_dir, 'pha')):
            print(f'error: no real-photo validation set in {args.gt_dir}: run `python -m dataset.prepare` '
                  'first', file=sys.stderr)
            return 2
    args.bgr_dir = args.bgr_dir or 'data/Backgrounds'
    progress = not args.no_progress
    try:
        if args.limit is not None and args.limit < 1:
            raise EvaluationError(f'--limit must be at least 1, got {args.limit}')
        if dataset in ('folder', 'real'):
            if not args.gt_dir:
                raise EvaluationError('--dataset folder needs --gt-dir (a folder with pha/ and fgr/)')
            # Compositing needs the true foregrounds; scoring predictions does not.
            samples = folder_samples(args.gt_dir, require_fgr=args.pred_dir is None)
        else:
            samples = photomatte85_samples(args.data_dir)
        composite = CompositeConfig(seed=args.seed, max_shift=args.shift,
                                    gamma_range=tuple(args.gamma), noise_std=args.noise_std)
        if args.pred_dir:
            evaluate_predictions(samples, args.pred_dir, dataset, composite.trimap, args.log_dir,
                                 args.run_name, args.trimap_dir, args.limit, progress)
        elif args.prepare_only:
            samples = sorted(samples, key=lambda s: s.name)[:args.limit] if args.limit else samples
            print(prepare_composites(samples, args.bgr_dir, args.cache_dir, composite, dataset, progress))
        else:
            model_config = ModelConfig(args.weights, args.model_type, args.backbone_scale,
                                       args.refine_mode, args.refine_sample_pixels, args.refine_threshold,
                                       args.engine, args.device)
            evaluate_model(samples, args.bgr_dir, model_config, composite, dataset, args.cache_dir,
                           args.log_dir, args.run_name, args.save_pred, args.trimap_dir, args.limit,
                           progress)
    except (EvaluationError, ImageReadError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
