"""Background matting of images and videos with BackgroundMattingV2.

The official inference_images.py and inference_video.py in one command:

    # the samples shipped in dataset/samples, outputs in ./image (default weights:
    # weights/bgmv2_mobilenetv2_synthetic.pdparams)
    python predict.py

    # one pair, two folders matched by file name, or a video with its background
    python predict.py --src photo.jpg --bgr plate.jpg --weights pytorch_mobilenetv2.pth
    python predict.py --src shots/ --bgr plates/ --output-types pha com --weights W
    python predict.py --src take.mp4 --bgr plate.png --preprocess-alignment \\
        --output-types pha new --target-bgr beach.jpg --weights W
    python predict.py --src takes/ --bgr plates/ --output-types pha com     # a folder of videos

    # live: a camera (index or stream URL, or a video file standing in for one), the official
    # inference_webcam.py (window: B captures the plate, N switches the background, Q quits)
    python predict.py --camera 0 --resolution 1280 720
    python predict.py --camera take.mp4 --headless --record live.mp4 --target-bgr blur

Images give <output-dir>/<kind>/<name>.png; a video gives <output-dir>/<kind>.mp4 (H.264,
with the source's audio in com/new; com.webm: VP9 with alpha), or <output-dir>/<kind>/000000.png
... with --video-output-type png_sequence, at the input frame rate; a folder of videos gives
<output-dir>/<clip>/... per clip. Outputs that predict.py wrote before are replaced (it
lists them in <output-dir>/.predict-outputs.json); other existing files are kept unless
--overwrite is given. Outputs appear only when the whole run succeeded. The work is done in
utils/predict/.

Exit codes: 0 success, 1 error (bad input file, weights, output folder), 2 usage error,
130 / 143 interrupted (Ctrl+C / SIGTERM; nothing written).
"""
import argparse
import os
import sys

from model.options import BACKBONES, OFFICIAL_MODEL_TYPES, REFINE_KERNEL_SIZES, REFINE_MODES
from utils.deploy.engine import DEVICES
from utils.live import DEFAULT_PLATE_FRAMES, LiveOptions, run_live
from utils.live import summary_line as live_summary_line
from utils.predict import (ENGINES, MODEL_DEFAULTS, VIDEO_OUTPUT_TYPES, PredictConfig,
                           Terminated, UsageError, run_prediction)
from utils.predict.compose import DEFAULT_TARGET_BGR, OUTPUT_KINDS

# Options of the camera mode, not part of PredictConfig.
CAMERA_OPTIONS = ('camera', 'headless', 'record', 'plate_frames', 'max_frames', 'camera_fps',
                  'hide_fps')

ROOT = os.path.dirname(os.path.abspath(__file__))
# The default checkpoint (trained by this project, see README); predict.py uses it when
# --weights is not given, and explains how to get weights if it is missing.
DEFAULT_WEIGHTS = os.path.join(ROOT, 'weights', 'bgmv2_mobilenetv2_synthetic.pdparams')
SAMPLE_SRC = os.path.join(ROOT, 'dataset', 'samples', 'src')
SAMPLE_BGR = os.path.join(ROOT, 'dataset', 'samples', 'bgr')
# Options of the official scripts that have no PredictConfig field.
OFFICIAL_ONLY_OPTIONS = ('model_type', 'num_workers')
# --output-format's values in the official inference_video.py -> --video-output-type.
OFFICIAL_OUTPUT_FORMATS = {'image_sequences': 'png_sequence'}


def _display_path(path):
    """`path` relative to the working folder when inside it, else absolute."""
    relative = os.path.relpath(path)
    return path if relative.startswith('..') else relative


def no_weights_message():
    """What to do when neither --weights nor the default weights exist."""
    where = '' if os.path.relpath(ROOT) == '.' else f' (in {_display_path(ROOT)})'
    return f'''error: no --weights given, and the default weights
  {_display_path(DEFAULT_WEIGHTS)} do not exist.
Download an official checkpoint (e.g. pytorch_mobilenetv2.pth, linked from the official
BackgroundMattingV2 README) and pass it directly (converted on the fly):
  python predict.py --weights pytorch_mobilenetv2.pth
or convert it once to .pdparams{where}:
  python -m utils.convert_weights pytorch_mobilenetv2.pth weights/mobilenetv2_official.pdparams
  python predict.py --weights weights/mobilenetv2_official.pdparams'''


def _device(value):
    """'cuda' (the official scripts' spelling) is accepted for 'gpu'."""
    return 'gpu' if value == 'cuda' else value


def _video_output_type(value):
    """The official --output-format values are accepted too (image_sequences)."""
    return OFFICIAL_OUTPUT_FORMATS.get(value, value)


def build_parser():
    parser = argparse.ArgumentParser(
        description='Background matting of images and videos (BackgroundMattingV2).\n'
                    'The official scripts\' option names (--images-src, --video-src,\n'
                    '--model-checkpoint, --model-backbone, ...) are accepted too.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='examples:\n'
               '  python predict.py                                          # the shipped samples\n'
               '  python predict.py --src a.jpg --bgr a_bgr.jpg --weights pytorch_resnet50.pth\n'
               '  python predict.py --src take.mp4 --bgr plate.png --preprocess-alignment --weights W')
    inputs = parser.add_argument_group('inputs')
    inputs.add_argument('--src', '--images-src', '--video-src', dest='src', metavar='PATH',
                        help='source image, folder of images, or video (default: the samples in '
                             'dataset/samples/src)')
    inputs.add_argument('--bgr', '--images-bgr', '--video-bgr', dest='bgr', metavar='PATH',
                        help='background: an image, a folder of images matched to the sources by '
                             'file name (extension aside), or for a video an image or a video')
    inputs.add_argument('--resize-bgr', action='store_true',
                        help='resize a background whose size differs from its source (default: error)')
    inputs.add_argument('--resize', '--video-resize', '--resolution', dest='resize', type=int, nargs=2,
                        metavar=('WIDTH', 'HEIGHT'),
                        help='resize the inputs to WIDTH x HEIGHT before matting; outputs have that size')
    inputs.add_argument('--preprocess-alignment', action='store_true',
                        help='align each background to its source with feature matching and a '
                             'homography (hand-held footage); warns and uses the plate as it is '
                             'when no alignment is found')

    camera = parser.add_argument_group(
        'camera (live matting; --bgr is then an optional plate image, --resolution the camera size)')
    camera.add_argument('--camera', metavar='SOURCE',
                        help='camera index (0), stream URL, or a video file standing in for a camera')
    camera.add_argument('--headless', action='store_true',
                        help='no window: the composites go to --record (default <output-dir>/live.mp4)')
    camera.add_argument('--record', metavar='FILE', help='also write the composited stream to this mp4')
    camera.add_argument('--plate-frames', type=int, metavar='N',
                        help='average the first N frames as the plate (default: press B in the '
                             f'window; headless: {DEFAULT_PLATE_FRAMES})')
    camera.add_argument('--max-frames', type=int, metavar='N', help='stop after N matted frames')
    camera.add_argument('--camera-fps', type=float, metavar='FPS',
                        help="pace of a video file standing in for a camera (default: the file's rate)")
    camera.add_argument('--hide-fps', action='store_true', help='no frame rate in the window')

    model = parser.add_argument_group('model')
    model.add_argument('--model-type', choices=OFFICIAL_MODEL_TYPES, default=OFFICIAL_MODEL_TYPES[0],
                       help=f'the official scripts\' option; only {OFFICIAL_MODEL_TYPES[0]} runs here')
    model.add_argument('--weights', '--model-checkpoint', dest='weights', metavar='FILE',
                       help=f'.pdparams, or an official .pth (converted on the fly); default '
                            f'{os.path.relpath(DEFAULT_WEIGHTS, ROOT)} when it exists')
    model.add_argument('--inference-model', metavar='DIR',
                       help='run a folder written by `python -m utils.deploy.export` instead of '
                            '--weights (model options are those it was exported with)')
    model.add_argument('--engine', choices=ENGINES, default='auto',
                       help='auto: on the CPU the fastest installed engine (ONNX Runtime or '
                            'OpenVINO, then Paddle Inference), else dygraph (default: auto)')
    model.add_argument('--backbone', '--model-backbone', dest='backbone',
                       choices=BACKBONES,
                       help="default: the weights' backbone (if given, must match them)")
    model.add_argument('--backbone-scale', '--model-backbone-scale', dest='backbone_scale', type=float,
                       metavar='SCALE',
                       help=f"downsampling of the base network's input, <= 0.5 "
                            f"(default: {MODEL_DEFAULTS['backbone_scale']})")
    model.add_argument('--refine-mode', '--model-refine-mode', dest='refine_mode',
                       choices=REFINE_MODES,
                       help=f"refine all patches, a fixed number, or those above the threshold "
                            f"(default: {MODEL_DEFAULTS['refine_mode']})")
    model.add_argument('--refine-sample-pixels', '--model-refine-sample-pixels',
                       dest='refine_sample_pixels', type=int, metavar='PIXELS',
                       help=f"pixels refined in sampling mode "
                            f"(default: {MODEL_DEFAULTS['refine_sample_pixels']})")
    model.add_argument('--refine-threshold', '--model-refine-threshold', dest='refine_threshold',
                       type=float, metavar='THRESHOLD',
                       help=f"error threshold in thresholding mode "
                            f"(default: {MODEL_DEFAULTS['refine_threshold']})")
    model.add_argument('--refine-kernel-size', '--model-refine-kernel-size', dest='refine_kernel_size',
                       type=int, choices=REFINE_KERNEL_SIZES, help="default: the weights' own")
    model.add_argument('--device', type=_device, choices=DEVICES, default='cpu',
                       help='default: cpu')
    model.add_argument('--precision', choices=['float32', 'float16'], default='float32',
                       help='float16 needs --device gpu (default: float32)')
    model.add_argument('--batch-size', type=int, default=4, metavar='N',
                       help='frames (or same-sized images) per network call (default: 4)')
    model.add_argument('--num-workers', type=int, default=0, metavar='N',
                       help="accepted for the official commands; no effect: inputs are always "
                            "read in one background thread while the network runs")

    outputs = parser.add_argument_group('outputs')
    outputs.add_argument('--output-dir', default='image', metavar='DIR',
                         help='default: ./image')
    outputs.add_argument('--output-types', '--output-type', dest='output_types', nargs='+',
                         choices=OUTPUT_KINDS, metavar='TYPE',
                         help='any of: pha (alpha matte), fgr (foreground colour), com (foreground '
                              'with alpha, RGBA PNG), err (error map), ref (refined patches), new '
                              '(composite on --target-bgr). Default: pha fgr com new (video files: '
                              'pha fgr new; com is then a .webm with alpha)')
    outputs.add_argument('--target-bgr', '--video-target-bgr', dest='target_bgr', metavar='BGR',
                         help='background of the "new" output: an image (scaled to cover, centred), '
                              'a video (for video input), or a colour R,G,B or #RRGGBB '
                              f'(default: {",".join(map(str, DEFAULT_TARGET_BGR))})')
    outputs.add_argument('--video-output-type', '--output-format', dest='video_output_type',
                         type=_video_output_type, choices=VIDEO_OUTPUT_TYPES, default='video',
                         help='video: <kind>.mp4 files (H.264; com as com.webm, VP9 with alpha); '
                              'png_sequence (official: image_sequences): <kind>/000000.png ... '
                              '(default: video)')
    outputs.add_argument('--overwrite', '-y', action='store_true',
                         help='replace existing outputs (default: stop before running)')
    outputs.add_argument('--quiet', action='store_true', help='no progress bar or summary')
    return parser


def values_given(args, name):
    """True if the option `name` differs from its default."""
    return getattr(args, name) not in (None, False)


def config_from_args(args):
    """A PredictConfig from parsed arguments (the sample data when no inputs are given)."""
    values = dict(vars(args))
    for name in CAMERA_OPTIONS + OFFICIAL_ONLY_OPTIONS:
        values.pop(name)
    if args.model_type != OFFICIAL_MODEL_TYPES[0]:
        raise UsageError(f'--model-type {args.model_type}: predict.py runs MattingRefine; pass '
                         f'--model-type {OFFICIAL_MODEL_TYPES[0]} with a MattingRefine checkpoint')
    if args.camera is None:
        given = [name for name in CAMERA_OPTIONS[1:] if values_given(args, name)]
        if given:
            raise UsageError(f'--{given[0].replace("_", "-")} applies to --camera only')
    else:
        if args.src is not None:
            raise UsageError('--camera and --src are two inputs; pass one of them')
        values['src'] = args.camera
        return PredictConfig(**values)
    if (args.src is None) != (args.bgr is None):
        raise UsageError('--src and --bgr go together (or leave both out to run on the samples)')
    if args.src is None:
        values['src'], values['bgr'] = SAMPLE_SRC, SAMPLE_BGR
    return PredictConfig(**values)


def main(argv=None):
    """Run predict.py with `argv` (default: sys.argv[1:]); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse has printed the usage error (or the help)
        return e.code
    if args.weights is None and args.inference_model is None:
        if not os.path.isfile(DEFAULT_WEIGHTS):
            print(no_weights_message(), file=sys.stderr)
            return 2
        args.weights = DEFAULT_WEIGHTS

    # The expected failures: each carries a one-line message naming the file and the fix.
    from model.weights import CheckpointError
    from utils.image_io import ImageReadError
    from utils.predict import PredictError
    from utils.video_io import VideoReadError, VideoWriteError
    try:
        config = config_from_args(args)
        if args.camera is not None:
            summary = run_live(config, LiveOptions(
                source=args.camera, headless=args.headless, record=args.record,
                plate_frames=args.plate_frames, max_frames=args.max_frames,
                camera_fps=args.camera_fps, show_fps=not args.hide_fps))
            if not args.quiet:
                print(live_summary_line(summary))
            return 0
        summary = run_prediction(config)
    except UsageError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    except (PredictError, CheckpointError, ImageReadError, VideoReadError, VideoWriteError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    except Terminated as e:
        print('terminated; no outputs were written', file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print('interrupted; no outputs were written', file=sys.stderr)
        return 130
    if not args.quiet:
        count, seconds = summary['count'], summary['seconds']
        unit = 'image' if summary['mode'] == 'images' else 'frame'
        print(f'{count} {unit}{"s" if count != 1 else ""} in {seconds:.1f} s '
              f'({count / max(seconds, 1e-9):.2f}/s): {" ".join(summary["kinds"])} written to '
              f'{summary["output_dir"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
