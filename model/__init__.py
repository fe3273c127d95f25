"""BackgroundMattingV2 networks in PaddlePaddle."""
import utils.library_logging  # noqa: F401  first: quiets third-party import-time noise
from .model import BACKBONES, MattingBase, MattingRefine, check_inputs
from .refiner import REFINE_MODES, Refiner

__all__ = ['BACKBONES', 'REFINE_MODES', 'MattingBase', 'MattingRefine', 'Refiner', 'check_inputs']
