"""The model's options, their defaults and allowed values: defined here once, read by every
command line (predict.py, eval.py, train.py, benchmark.py, the export) and by the networks.

Importing this module does not import Paddle, so scripts can build their argument parsers
without it.
"""
from dataclasses import asdict, dataclass

BACKBONES = ('mobilenetv2', 'resnet50', 'resnet101')
REFINE_MODES = ('full', 'sampling', 'thresholding')
REFINE_KERNEL_SIZES = (1, 3)
MODEL_TYPES = ('refine', 'base')
# MODEL_TYPES in the official scripts' spelling (their --model-type); predict.py runs the first.
OFFICIAL_MODEL_TYPES = tuple(f'matting{kind}' for kind in MODEL_TYPES)
# The backbones' output stride: the base network's input (the image times backbone_scale) needs
# at least this many pixels on its shorter side to fill one feature cell; below it the matte is
# empty (measured on the samples: 128x72 at scale 0.25 gives a usable matte, 96x54 can give an
# all-zero one).
BASE_MIN_SIDE = 16
# MattingRefine's outputs, in order; and MattingBase's.
OUTPUT_NAMES = ('pha', 'fgr', 'pha_sm', 'fgr_sm', 'err_sm', 'ref_sm')
BASE_OUTPUT_NAMES = ('pha', 'fgr', 'err', 'hid')


@dataclass(frozen=True)
class RefineOptions:
    """MattingRefine's keyword arguments besides the backbone, with the official defaults.

    backbone_scale: downsampling of the image given to the base network (<= 1/2).
    refine_mode: one of REFINE_MODES; refine_sample_pixels: pixel budget in 'sampling' mode;
    refine_threshold: error threshold in 'thresholding' mode; refine_kernel_size: one of
    REFINE_KERNEL_SIZES; refine_prevent_oversampling: in 'sampling' mode, skip patches whose
    error is 0.
    """
    backbone_scale: float = 0.25
    refine_mode: str = 'sampling'
    refine_sample_pixels: int = 80_000
    refine_threshold: float = 0.1
    refine_kernel_size: int = 3
    refine_prevent_oversampling: bool = True

    def as_dict(self):
        return asdict(self)


REFINE_DEFAULTS = RefineOptions()
