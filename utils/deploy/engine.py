"""Inference engines: one interface over the dygraph model and the exported models.

Every engine is called with numpy arrays and returns numpy arrays, so predict.py, eval.py, the
benchmark, the live mode and the web app do not care which one runs:

    engine = create_engine('model.pdparams', engine='auto', refine_mode='sampling')
    out = engine(src, bgr)   # src, bgr: (B, 3, H, W) float32 in [0, 1], H and W divisible by 4
    out['pha'], out['fgr'], out['pha_sm'], out['fgr_sm'], out['err_sm'], out['ref_sm']
    engine.name                               # which engine it is

    engine = InferenceEngine('export_dir')   # a model written by `python -m utils.deploy.export`
    engine.options                            # the model options baked into it

Engines: DygraphEngine (the Paddle model run eagerly), InferenceEngine (an exported model run
by Paddle Inference: oneDNN on the CPU; GPU/TensorRT on the GPU), and, in
utils.deploy.onnx_engines, OnnxRuntimeEngine and OpenVINOEngine (the ONNX export, CPU). All
give the same outputs within 1e-5 and refine the same patches (tests/test_engine.py).
create_engine(engine='auto') on the CPU tries the engines of `auto_engine_order()`, fastest
first as measured with benchmark.py, exporting once into the user's cache folder
(utils.deploy.export.export_cache_dir); an engine whose package is missing is skipped, one that
fails warns and the next is tried. A server answering requests on a pool of threads builds and
calls its engines through one EngineThread.
"""
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from model.options import BASE_OUTPUT_NAMES, OUTPUT_NAMES

DEVICES = ('cpu', 'gpu')
PRECISIONS = ('float32', 'float16', 'bfloat16')
ENGINES = ('auto', 'openvino', 'onnxruntime', 'inference', 'dygraph')
# Exported engines and the export format each runs.
EXPORT_FORMATS = {'openvino': 'onnx', 'onnxruntime': 'onnx', 'inference': 'paddle'}
# Paddle 3.3.1 oneDNN pass that builds an invalid program from our transpose + reshape chains
# with dynamic shapes ("The type tensor<-1x12xf32> of outputs[0][0] must be equal to type
# tensor<-1x-1x-1x2x2x3xf32> of inputs[0]"); the rest of the oneDNN pipeline is kept.
ONEDNN_DELETED_PASSES = ('operator_reshape_onednn_fuse_pass',)


def onednn_breaks(options):
    """True where Paddle 3.3.1's oneDNN kernels compute an exported model wrongly.

    A refiner with kernel size 1 on a CPU with AVX-512: the refined alpha and foreground come out
    wrong (alpha off by up to 1.0 on most pixels of a 256x384 case), with or without the IR
    passes; capping oneDNN at AVX2 (ONEDNN_MAX_CPU_ISA) or running Paddle's plain CPU kernels
    gives the dygraph result. The InferenceEngine then runs without oneDNN.
    """
    return options.get('refine_kernel_size') == 1 and 'avx512f' in cpu_flags()


def default_device():
    """Paddle's default device: 'gpu' on a GPU build with a GPU, else 'cpu'."""
    import paddle
    return paddle.device.get_device().split(':')[0]


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
    """Runs a MattingRefine (or MattingBase) layer eagerly (paddle dygraph).

    Args:
        model: a MattingRefine or MattingBase in eval mode (e.g. from model.build_model).
        device: 'cpu' or 'gpu'.
        precision: 'float32', or 'float16' (GPU, through paddle.amp auto_cast).
    Call: (src, bgr) numpy (B, 3, H, W) float32 -> dict of numpy outputs (OUTPUT_NAMES, or
    BASE_OUTPUT_NAMES for a MattingBase).
    """

    name = 'dygraph'

    def __init__(self, model, device='cpu', precision='float32'):
        import paddle
        set_device(device)
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
        if precision == 'float16' and device != 'gpu':
            raise ValueError('float16 runs on the GPU only (--device gpu); use float32 on the CPU')
        from model import MattingRefine
        self.model = model
        self.output_names = OUTPUT_NAMES if isinstance(model, MattingRefine) else BASE_OUTPUT_NAMES
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
        return {name: out.astype('float32').numpy() for name, out in zip(self.output_names, outputs)}


class InferenceEngine:
    """Runs an exported model (`python -m utils.deploy.export`) with Paddle Inference.

    Args:
        model_dir: folder written by utils.deploy.export (model.json, model.pdiparams, export.json).
        device: 'cpu' (oneDNN unless onednn=False) or 'gpu' (TensorRT if tensorrt=True).
        precision: 'float32'; 'bfloat16' on the CPU (oneDNN bf16 kernels; needs a CPU with
            avx512_bf16 / AMX); 'float16' on the GPU.
        threads: CPU math threads (default: the CPUs this process may use).
        onednn: use oneDNN on the CPU (the fast path; False runs Paddle's plain CPU kernels).
    Attributes:
        options: the model options recorded at export (backbone, backbone_scale, refine_*).
        metadata: the whole export.json.
    Call: (src, bgr) numpy (B, 3, H, W) float32, H and W divisible by 4 -> dict of numpy
    outputs (OUTPUT_NAMES), as DygraphEngine.
    """

    name = 'inference'

    def __init__(self, model_dir, device='cpu', precision='float32', threads=None, onednn=True,
                 tensorrt=False, gpu_memory_mb=512, gpu_id=0):
        from utils.deploy.export import load_metadata
        if device not in DEVICES:
            raise ValueError(f'device must be one of {DEVICES}, got {device!r}')
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
        if precision == 'float16' and device != 'gpu':
            raise ValueError('float16 runs on the GPU only (--device gpu); on the CPU use float32 '
                             'or bfloat16')
        if precision == 'bfloat16' and (device != 'cpu' or not onednn):
            raise ValueError('bfloat16 runs on the CPU with oneDNN only')
        if precision == 'bfloat16' and not cpu_supports_bfloat16():
            raise ValueError('bfloat16 needs a CPU with avx512_bf16 (or AMX); this one has neither')
        self.model_dir = model_dir
        self.metadata = load_metadata(model_dir)
        self.options = dict(self.metadata['options'])
        if device == 'cpu' and onednn and onednn_breaks(self.options):
            if precision == 'bfloat16':
                raise ValueError('bfloat16 needs oneDNN, whose AVX-512 kernels compute a refiner of '
                                 'kernel size 1 wrongly on this CPU; use float32')
            onednn = False
        self.device = device
        self.precision = precision
        config, self.threads = predictor_config(
            os.path.join(model_dir, self.metadata['program']),
            os.path.join(model_dir, self.metadata['params']),
            device, precision, threads, onednn, tensorrt, gpu_memory_mb, gpu_id)
        self.onednn = device == 'cpu' and onednn
        self.tensorrt = device == 'gpu' and tensorrt
        self._run = predictor_runner(config)
        if len(self._run.output_names) != len(OUTPUT_NAMES):
            raise RuntimeError(f'{model_dir}: the program has {len(self._run.output_names)} outputs, '
                               f'expected {len(OUTPUT_NAMES)}; re-export the weights')

    def __call__(self, src, bgr):
        from model import check_inputs
        src = np.ascontiguousarray(src, dtype=np.float32)
        bgr = np.ascontiguousarray(bgr, dtype=np.float32)
        # the dygraph model checks its inputs itself; an exported graph cannot
        check_inputs(src, bgr, multiple=4)
        return dict(zip(OUTPUT_NAMES, self._run({'src': src, 'bgr': bgr})))


def predictor_runner(config):
    """A Paddle Inference predictor for `config` as run(inputs: {name: array}) -> list of outputs
    (copies) in the program's order; run.output_names lists them."""
    import paddle.inference as paddle_infer
    predictor = paddle_infer.create_predictor(config)
    names = predictor.get_output_names()
    outputs = [predictor.get_output_handle(name) for name in names]
    handles = {name: predictor.get_input_handle(name) for name in predictor.get_input_names()}

    def run(inputs):
        for name, array in inputs.items():
            handle = handles[name]
            handle.reshape(array.shape)
            handle.copy_from_cpu(array)
        predictor.run()
        return [handle.copy_to_cpu() for handle in outputs]
    run.output_names = names
    return run


def predictor_config(program, params, device='cpu', precision='float32', threads=None, onednn=True,
                     tensorrt=False, gpu_memory_mb=512, gpu_id=0):
    """The Paddle Inference config every engine here uses -> (config, CPU threads or None).

    CPU: `threads` math threads (default: all available), oneDNN (minus ONEDNN_DELETED_PASSES),
    bfloat16 through oneDNN if asked; GPU: float32 or float16, optionally TensorRT.
    """
    import paddle.inference as paddle_infer
    config = paddle_infer.Config(program, params)
    if device == 'cpu':
        config.disable_gpu()
        threads = threads or available_cpus()
        config.set_cpu_math_library_num_threads(threads)
        if onednn:
            config.enable_onednn()
            for name in ONEDNN_DELETED_PASSES:
                config.delete_pass(name)
            if precision == 'bfloat16':
                config.enable_onednn_bfloat16()
        else:
            config.disable_onednn()
    else:
        import paddle
        if not paddle.device.is_compiled_with_cuda():
            raise RuntimeError('--device gpu needs the GPU build of PaddlePaddle '
                               '(see README: Environment); this one is CPU-only')
        threads = None
        half = precision == 'float16'
        config.enable_use_gpu(gpu_memory_mb, gpu_id,
                              paddle_infer.PrecisionType.Half if half and not tensorrt
                              else paddle_infer.PrecisionType.Float32)
        if tensorrt:
            config.enable_tensorrt_engine(
                workspace_size=1 << 30, max_batch_size=1, min_subgraph_size=3,
                precision_mode=paddle_infer.PrecisionType.Half if half else paddle_infer.PrecisionType.Float32,
                use_static=False, use_calib_mode=False)
    config.disable_glog_info()
    return config, threads


def available_cpus():
    """CPUs this process may run on (the default number of CPU threads)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_supports_bfloat16():
    """True if the CPU has bfloat16 instructions (what Paddle's oneDNN bf16 kernels need)."""
    try:
        import paddle
        return bool(paddle.base.core.supports_bfloat16())
    except Exception:  # older/other builds: ask the kernel
        return 'avx512_bf16' in cpu_flags()


def auto_engine_order(flags=None):
    """The engines engine='auto' tries on the CPU, fastest first (benchmark.py, README: Speed).

    Measured on 2-core AMD EPYC machines: with AVX-512 (MobileNetV2, 720p and 1080p), OpenVINO
    ran fastest, then ONNX Runtime; with AVX2 only, ONNX Runtime took 8-41 % less time than
    OpenVINO (MobileNetV2 and ResNet-50, 720p to 4K). Paddle Inference and dygraph come after
    both everywhere.
    flags: the CPU's feature flags (default: this machine's, from /proc/cpuinfo).
    """
    if flags is None:
        flags = cpu_flags()
    first = ('openvino', 'onnxruntime') if 'avx512f' in flags else ('onnxruntime', 'openvino')
    return first + ('inference', 'dygraph')


def cpu_flags():
    """The CPU feature flags (/proc/cpuinfo) that decide engine speed: AVX2/AVX-512/AMX."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    flags = set(line.split(':', 1)[1].split())
                    return sorted(flags & {'avx2', 'fma', 'avx512f', 'avx512_bf16', 'avx512_vnni',
                                           'amx_bf16', 'amx_tile', 'amx_int8'})
    except OSError:
        pass
    return []


def create_engine(weights, engine='dygraph', device='cpu', precision='float32', threads=None,
                  cache_dir=None, model_type='refine', **model_options):
    """Build an engine for `weights` (.pdparams or official .pth).

    engine:
        'dygraph'      the model run eagerly (always available);
        'onnxruntime', 'openvino'
                       the ONNX export of the weights with these options (CPU, float32), made
                       once and cached in the user's cache (utils.deploy.export.cached_export);
        'inference'    Paddle Inference on the Paddle export, cached likewise; oneDNN on the CPU;
        'auto'         on the CPU, the first of `auto_engine_order()` that works in float32
                       (missing packages are skipped, failures warn), ending with dygraph; with
                       another precision, Paddle Inference; 'dygraph' on the GPU (Paddle
                       Inference on the GPU is available as engine='inference', not tested here).
    model_options: MattingRefine options (backbone, backbone_scale, refine_mode,
    refine_sample_pixels, refine_threshold, refine_kernel_size, refine_prevent_oversampling).
    threads: CPU threads for the exported engines (default: all available).
    model_type: 'refine', 'base' (dygraph only) or None (what the weights hold; exported
    graphs are MattingRefine graphs).
    The engine's `name` says which one it is.
    """
    if engine not in ENGINES:
        raise ValueError(f'unknown engine {engine!r}; one of {ENGINES}')
    if device not in DEVICES:
        raise ValueError(f'device must be one of {DEVICES}, got {device!r}')
    if model_type == 'base' and engine in EXPORT_FORMATS:
        raise ValueError('MattingBase runs on the dygraph engine only; use engine dygraph')
    if engine == 'auto':
        candidates = ()
        if device == 'cpu' and model_type != 'base':
            candidates = [e for e in auto_engine_order() if e in EXPORT_FORMATS
                          and (precision == 'float32' or e == 'inference')]
        for candidate in candidates:
            try:
                return _exported_engine(candidate, weights, device, precision, threads, cache_dir,
                                        model_options)
            except (KeyboardInterrupt, MemoryError):
                raise
            except Exception as e:  # CheckpointError & co. are re-raised: no engine gets past them
                from model.weights import CheckpointError
                if isinstance(e, (CheckpointError, ValueError, TypeError)):
                    raise
                if isinstance(e, _MissingRuntime):
                    continue
                # one line: warn_explicit with no source line to quote
                warnings.warn_explicit(f'{candidate} engine unavailable ({type(e).__name__}: {e}); '
                                       f'trying the next engine', RuntimeWarning, 'create_engine', 0,
                                       module=__name__)
        engine = 'dygraph'
    if engine in EXPORT_FORMATS:
        return _exported_engine(engine, weights, device, precision, threads, cache_dir, model_options)
    from model.weights import build_model
    set_device(device)
    model_options = dict(model_options)
    backbone = model_options.pop('backbone', None)
    model = build_model(weights, model_type=model_type, backbone=backbone, **model_options)
    return DygraphEngine(model, device, precision)


class _MissingRuntime(ImportError):
    """The package an engine needs is not installed (engine='auto' skips that engine)."""


ENGINE_PACKAGES = {'openvino': ('openvino', 'paddle2onnx', 'onnx'),
                   'onnxruntime': ('onnxruntime', 'paddle2onnx', 'onnx')}


def _exported_engine(engine, weights, device, precision, threads, cache_dir, model_options):
    """An exported engine for weights: export once (cached), then load."""
    from utils.deploy.export import cached_export
    missing = _missing_packages(engine, export=True)
    if missing:
        raise _MissingRuntime(f'the {engine} engine needs {", ".join(missing)} '
                              f'(pip install -r requirements.txt)')
    model_dir = cached_export(weights, cache_dir=cache_dir, format=EXPORT_FORMATS[engine], **model_options)
    return open_export(model_dir, engine, device=device, precision=precision, threads=threads)


def open_export(model_dir, engine='auto', **options):
    """An engine on an export folder: `engine` ('openvino', 'onnxruntime' or 'inference'), or
    'auto': the first of `auto_engine_order()` whose format the folder holds and whose packages
    are installed. options: device, precision, threads."""
    if engine == 'auto':
        formats = _export_formats(model_dir)
        usable = [e for e in auto_engine_order() if EXPORT_FORMATS.get(e) in formats
                  and not _missing_packages(e)]
        engine = usable[0] if usable else 'inference'
    if engine == 'inference':
        return InferenceEngine(model_dir, **options)
    if engine not in EXPORT_FORMATS:
        raise ValueError(f'an export folder runs on {", ".join(EXPORT_FORMATS)} or auto, not {engine!r}')
    missing = _missing_packages(engine)
    if missing:
        raise _MissingRuntime(f'the {engine} engine needs {", ".join(missing)} '
                              f'(pip install -r requirements.txt)')
    from utils.deploy.onnx_engines import OnnxRuntimeEngine, OpenVINOEngine
    return {'onnxruntime': OnnxRuntimeEngine, 'openvino': OpenVINOEngine}[engine](model_dir, **options)


def _export_formats(model_dir):
    from utils.deploy.export import load_metadata
    return load_metadata(model_dir, None)['formats']


def _missing_packages(engine, export=False):
    """The packages engine needs that are not installed (with export: to make its export too)."""
    import importlib.util
    needed = ENGINE_PACKAGES.get(engine, ())
    if not export:
        needed = [p for p in needed if p != 'paddle2onnx']
    return [p for p in needed if importlib.util.find_spec(p) is None]


def export_engines(model_dir, device='cpu'):
    """[(name, engine)] for every installed engine that can run what the export folder holds."""
    formats = _export_formats(model_dir)
    return [(name, open_export(model_dir, name, device=device)) for name, format in EXPORT_FORMATS.items()
            if format in formats and not _missing_packages(name)]


class EngineThread:
    """One worker thread that builds engines and runs every call to them.

    Why: a Paddle 3.3.1 Inference predictor with oneDNN that has been called from two threads
    fails when a third thread calls it (`RuntimeError: std::exception`), as happens in a server
    answering each request on a thread of its pool (Gradio). Calls through this thread also
    run one at a time.

        thread = EngineThread()
        engine = thread.create_engine('model.pdparams', engine='auto')   # a ThreadBoundEngine
        out = engine(src, bgr)   # from any thread; runs on the worker thread
    """

    def __init__(self):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix='engine')

    def create_engine(self, weights, **options):
        """create_engine(weights, **options) run on the worker thread, bound to it."""
        return self.bind(self._executor.submit(create_engine, weights, **options).result())

    def bind(self, engine):
        """`engine` (any callable (src, bgr) -> outputs) called on the worker thread."""
        return ThreadBoundEngine(engine, self._executor)

    def shutdown(self):
        self._executor.shutdown(wait=True)


class ThreadBoundEngine:
    """An engine whose calls run on an EngineThread's worker (see there); its attributes are
    the engine's."""

    def __init__(self, engine, executor):
        self.engine = engine
        self._executor = executor

    def __call__(self, src, bgr):
        return self._executor.submit(self.engine, src, bgr).result()

    def __getattr__(self, name):
        return getattr(self.engine, name)
