"""predict.py's options (PredictConfig), their checks and the errors of a prediction run.

Expected failures (bad input files, weights, output folder) raise `PredictError` (or one of
the *Error types of utils.image_io / utils.video_io / model) with a one-line message that
names the file and the fix; `UsageError` marks wrong option combinations.
"""
import sys
from dataclasses import dataclass, field
from typing import List, Optional

from model.options import REFINE_DEFAULTS
from utils.deploy.engine import ENGINES
from utils.predict.compose import OUTPUT_KINDS

VIDEO_OUTPUT_TYPES = ('video', 'png_sequence')
# Used when a video does not report its frame rate.
FALLBACK_FPS = 30.0


class PredictError(Exception):
    """An expected failure; the message is one line naming the file and the fix."""


class UsageError(PredictError):
    """Options that do not go together (exit code 2, like argparse's own errors)."""


class Terminated(KeyboardInterrupt):
    """The run was stopped by a signal (SIGTERM); raised where the run is, so that it cleans up
    like after Ctrl+C. `signum`: the signal's number."""

    def __init__(self, signum):
        super().__init__(f'stopped by signal {signum}')
        self.signum = signum


@dataclass
class PredictConfig:
    """Everything a prediction run needs; the fields mirror predict.py's options.

    Model options left at None take the weights' own (backbone, kernel size) or the
    MattingRefine defaults; with `inference_model` they are baked into the export.
    """
    src: str
    bgr: str
    weights: Optional[str] = None
    inference_model: Optional[str] = None
    engine: str = 'auto'
    device: str = 'cpu'
    precision: str = 'float32'
    backbone: Optional[str] = None
    backbone_scale: Optional[float] = None
    refine_mode: Optional[str] = None
    refine_sample_pixels: Optional[int] = None
    refine_threshold: Optional[float] = None
    refine_kernel_size: Optional[int] = None
    output_dir: str = 'image'
    output_types: Optional[List[str]] = None
    target_bgr: Optional[str] = None
    video_output_type: str = 'video'
    resize: Optional[List[int]] = None  # (W, H)
    resize_bgr: bool = False
    preprocess_alignment: bool = False
    batch_size: int = 4
    overwrite: bool = False
    quiet: bool = False
    # where warnings go (a callable taking one line); default: stderr
    warn: object = field(default=None, repr=False)


# The model options predict.py always passes (the others default to what the weights hold).
MODEL_DEFAULTS = {k: getattr(REFINE_DEFAULTS, k)
                  for k in ('backbone_scale', 'refine_mode', 'refine_sample_pixels', 'refine_threshold')}


def warn_to_stderr(message):
    """The default `warn`: one 'warning: ...' line on stderr (tqdm.write keeps an active
    progress bar intact)."""
    from tqdm import tqdm
    tqdm.write(f'warning: {message}', file=sys.stderr)


def default_output_types(mode, video_output_type):
    # As video files 'com' (RGBA) is VP9 with alpha, slow to encode: asked for, not a default.
    if mode in ('video', 'videos') and video_output_type == 'video':
        return ['pha', 'fgr', 'new']
    return ['pha', 'fgr', 'com', 'new']


def check_config(config, mode):
    """Option checks that need no file access beyond the mode; raises UsageError."""
    kinds = config.output_types or default_output_types(mode, config.video_output_type)
    unknown = [k for k in kinds if k not in OUTPUT_KINDS]
    if unknown:
        raise UsageError(f'unknown output type {unknown[0]!r}; choose from {", ".join(OUTPUT_KINDS)}')
    if config.video_output_type not in VIDEO_OUTPUT_TYPES:
        raise UsageError(f'--video-output-type must be one of {", ".join(VIDEO_OUTPUT_TYPES)}')
    if config.precision == 'float16' and config.device != 'gpu':
        raise UsageError('--precision float16 runs on the GPU only; add --device gpu or use float32')
    if config.batch_size < 1:
        raise UsageError('--batch-size must be at least 1')
    if config.resize is not None and (len(config.resize) != 2 or min(config.resize) < 1):
        raise UsageError('--resize takes WIDTH HEIGHT, both positive')
    if config.backbone_scale is not None and not 0 < config.backbone_scale <= 0.5:
        raise UsageError(f'--backbone-scale must be in (0, 0.5], got {config.backbone_scale}')
    if config.refine_sample_pixels is not None and config.refine_sample_pixels < 16:
        raise UsageError('--refine-sample-pixels must be at least 16 (one 4x4 patch)')
    if config.refine_threshold is not None and not 0 <= config.refine_threshold <= 1:
        raise UsageError('--refine-threshold must be in [0, 1] (the error map is)')
    if config.engine not in ENGINES:
        raise UsageError(f'--engine must be one of {", ".join(ENGINES)}')
    if not config.inference_model and not config.weights:
        raise UsageError('no weights: pass --weights (a .pdparams or an official .pth) or '
                         '--inference-model DIR')
    return list(dict.fromkeys(kinds))  # drop repeats, keep order

