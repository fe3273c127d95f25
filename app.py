"""Web app: matte a photo (or a short video) and its plate in the browser (Gradio).

    pip install -r requirements-app.txt
    python app.py                                   # http://127.0.0.1:7860
    python app.py --weights pytorch_resnet50.pth    # also offer converted official weights
    python app.py --host 0.0.0.0 --port 8080        # reachable from other machines

Hosted Gradio apps (AI Studio, Hugging Face Spaces) run `python app.py` as it is; the host
and port also come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT. The page is built by
utils/webapp.py.
"""
import argparse
import os
import sys

from predict import DEFAULT_WEIGHTS
from utils.deploy.engine import DEVICES, ENGINES
from utils.predict import MODEL_DEFAULTS
from utils.webapp import DEFAULT_WEIGHTS_LABEL, MAX_VIDEO_FRAMES, AppInputError, ModelCache, build_app


def build_parser():
    parser = argparse.ArgumentParser(description='BackgroundMattingV2 web app (Gradio).')
    parser.add_argument('--weights', nargs='+', default=[], metavar='FILE',
                        help='weights to offer besides the default checkpoint: .pdparams or '
                             'official .pth (converted on the fly)')
    parser.add_argument('--engine', choices=ENGINES, default='auto',
                        help='auto: the fastest installed engine on the CPU (ONNX Runtime or '
                             'OpenVINO, then Paddle Inference), else dygraph (default: auto)')
    parser.add_argument('--device', choices=DEVICES, default='cpu', help='default: cpu')
    parser.add_argument('--host', default=None,
                        help='address to listen on (default: GRADIO_SERVER_NAME or 127.0.0.1)')
    parser.add_argument('--port', type=int, default=None,
                        help='port (default: GRADIO_SERVER_PORT or 7860)')
    parser.add_argument('--max-video-frames', type=int, default=MAX_VIDEO_FRAMES, metavar='N',
                        help=f'longest video accepted (default: {MAX_VIDEO_FRAMES})')
    parser.add_argument('--no-preload', action='store_true',
                        help='load the default model on the first request, not at start')
    return parser


def weights_choices(extra):
    """label -> file: the default checkpoint (if present), then each --weights file."""
    choices = {}
    if os.path.isfile(DEFAULT_WEIGHTS):
        choices[DEFAULT_WEIGHTS_LABEL] = DEFAULT_WEIGHTS
    for path in extra:
        if not os.path.isfile(path):
            raise AppInputError(f'{path}: no such weights file; check --weights')
        choices[os.path.basename(path)] = path
    if not choices:
        raise AppInputError(f'{DEFAULT_WEIGHTS} is missing and no --weights were given; pass '
                            f'--weights FILE (.pdparams or an official .pth)')
    return choices


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        cache = ModelCache(weights_choices(args.weights), engine=args.engine, device=args.device)
        if not args.no_preload:  # the first visitor should not wait for the export
            cache.get(cache.labels[0], MODEL_DEFAULTS['backbone_scale'], MODEL_DEFAULTS['refine_mode'])
    except AppInputError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    demo = build_app(cache, max_video_frames=args.max_video_frames)
    demo.launch(server_name=args.host, server_port=args.port)
    return 0


if __name__ == '__main__':
    sys.exit(main())
