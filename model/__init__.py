"""BackgroundMattingV2 networks in PaddlePaddle."""
from .model import BACKBONES, MattingBase, MattingRefine, check_inputs
from .refiner import REFINE_MODES, Refiner

__all__ = ['BACKBONES', 'REFINE_MODES', 'MattingBase', 'MattingRefine', 'Refiner', 'check_inputs']
