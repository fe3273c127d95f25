"""BackgroundMattingV2 networks in PaddlePaddle, and the one way to build them from a weights file.

    from model import build_model, MattingRefine, REFINE_DEFAULTS

Names are imported on first use, so `model.options` (the option tables) and reading weights
files do not pay for importing Paddle.
"""
import importlib

_HOMES = {
    'BACKBONES': 'options', 'REFINE_MODES': 'options', 'REFINE_KERNEL_SIZES': 'options',
    'MODEL_TYPES': 'options', 'OUTPUT_NAMES': 'options', 'BASE_OUTPUT_NAMES': 'options', 'RefineOptions': 'options',
    'REFINE_DEFAULTS': 'options', 'OFFICIAL_MODEL_TYPES': 'options', 'BASE_MIN_SIDE': 'options',
    'MattingBase': 'model', 'MattingRefine': 'model', 'check_inputs': 'model',
    'Refiner': 'refiner', 'onnx_tracing': 'ops',
    'CheckpointError': 'weights', 'Weights': 'weights', 'build_model': 'weights', 'load_weights': 'weights',
}
__all__ = list(_HOMES)


def __getattr__(name):
    if name in _HOMES:
        return getattr(importlib.import_module(f'.{_HOMES[name]}', __name__), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
