"""Inference engines: one interface over the dygraph model and exported Paddle Inference models.

Every engine is called with numpy arrays and returns numpy arrays, so predict.py, eval.py and the
benchmark do not care which one runs:

    engine = create_engine('model.pdparams', engine='dygraph', refine_mode='sampling')
    out = engine(src, bgr)   # src, bgr: (B, 3, H, W) float32 in [0, 1], H and W divisible by 4
    out['pha'], out['fgr'], out['pha_sm'], out['fgr_sm'], out['err_sm'], out['ref_sm']
"""
import numpy as np

OUTPUT_NAMES = ('pha', 'fgr', 'pha_sm', 'fgr_sm', 'err_sm', 'ref_sm')
DEVICES = ('cpu', 'gpu')
PRECISIONS = ('float32', 'float16', 'bfloat16')


def set_device(device):
    """Select the Paddle device; a clear error if 'gpu' is asked for on a CPU-only Paddle."""
    import paddle
    if device not in DEVICES:
        raise ValueError(f'device must be one of {DEVICES}, got {device!r}')
    if device == 'gpu' and not paddle.device.is_compiled_with_cuda():
        raise RuntimeError('--device gpu needs the GPU build of PaddlePaddle '
                           '(see README: Environment); this one is CPU-only')
    paddle.set_device(device)


class DygraphEngine:
    """Runs a MattingRefine layer eagerly (paddle dygraph).

    Args:
        model: a MattingRefine in eval mode (e.g. from utils.convert_weights.build_model).
        device: 'cpu' or 'gpu'.
        precision: 'float32', or 'float16' (GPU, through paddle.amp auto_cast).
    Call: (src, bgr) numpy (B, 3, H, W) float32 -> dict of numpy outputs (OUTPUT_NAMES).
    """

    def __init__(self, model, device='cpu', precision='float32'):
        import paddle
        set_device(device)
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
        if precision == 'float16' and device != 'gpu':
            raise ValueError('float16 runs on the GPU only (--device gpu); use float32 on the CPU')
        self.model = model
        self.device = device
        self.precision = precision
        self._paddle = paddle

    def __call__(self, src, bgr):
        paddle = self._paddle
        with paddle.no_grad():
            src_t = paddle.to_tensor(np.ascontiguousarray(src, dtype=np.float32))
            bgr_t = paddle.to_tensor(np.ascontiguousarray(bgr, dtype=np.float32))
            if self.precision == 'float32':
                outputs = self.model(src_t, bgr_t)
            else:
                level = 'O1'
                dtype = 'float16' if self.precision == 'float16' else 'bfloat16'
                with paddle.amp.auto_cast(level=level, dtype=dtype):
                    outputs = self.model(src_t, bgr_t)
        return {name: out.astype('float32').numpy() for name, out in zip(OUTPUT_NAMES, outputs)}


def create_engine(weights, engine='dygraph', device='cpu', precision='float32', **model_options):
    """Build an engine for `weights` (.pdparams or official .pth).

    engine: 'dygraph' (always available). model_options: MattingRefine options
    (backbone, backbone_scale, refine_mode, refine_sample_pixels, refine_threshold,
    refine_kernel_size, refine_prevent_oversampling).
    """
    from utils.convert_weights import build_model
    if engine != 'dygraph':
        raise ValueError(f'unknown engine {engine!r}')
    set_device(device)
    backbone = model_options.pop('backbone', None)
    model = build_model(weights, model_type='refine', backbone=backbone, **model_options)
    return DygraphEngine(model, device, precision)
