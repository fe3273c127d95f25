"""predict.py's library: options and checks, inputs, new backgrounds, staged outputs, the run loop.

    from utils.predict import PredictConfig, run_prediction
    summary = run_prediction(PredictConfig(src='src_dir', bgr='bgr_dir', weights='model.pdparams'))
"""
from .options import (ENGINES, MODEL_DEFAULTS, VIDEO_OUTPUT_TYPES, PredictConfig, PredictError, Terminated,
                      UsageError)
from .run import run_prediction

__all__ = ['ENGINES', 'MODEL_DEFAULTS', 'VIDEO_OUTPUT_TYPES', 'PredictConfig', 'PredictError', 'Terminated',
           'UsageError', 'run_prediction']
