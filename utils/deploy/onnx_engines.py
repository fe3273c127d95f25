"""ONNX Runtime and OpenVINO engines: the fastest exact ways to run the model on a CPU.

Both run the ONNX export of `utils.deploy.export` (formats=('onnx',)): one graph with dynamic
batch, height and width and no `If`. Before the first call with a new input shape, the graph's
inputs are fixed to that shape and the engine compiles it (ONNX Runtime 0.1-0.3 s, OpenVINO
0.7-1.5 s); the compiled models of the last MAX_SHAPES shapes are kept. With every shape known,
both engines fold the size arithmetic and plan the memory once: 8-16 % faster than running
the dynamic graph.

    engine = OnnxRuntimeEngine('export_dir')   # or OpenVINOEngine
    out = engine(src, bgr)   # numpy (B, 3, H, W) float32 in [0, 1], H and W divisible by 4
    out['pha'], out['fgr'], ...  (model.options.OUTPUT_NAMES)

Precision: float32, always. OpenVINO would otherwise pick bfloat16 by itself on CPUs with
AMX or avx512_bf16, which changes the alpha by up to 0.5 and the refined patches.
"""
import collections
import os

import numpy as np

from model.options import OUTPUT_NAMES

MAX_SHAPES = 4  # compiled models kept per engine (one per input shape), most recent first


def fixed_shape_model(onnx_path, shapes):
    """The ONNX model at onnx_path with its inputs fixed to `shapes` ({name: shape}), as bytes."""
    import onnx
    model = onnx.load(onnx_path)
    for tensor in model.graph.input:
        if tensor.name in shapes:
            for dim, size in zip(tensor.type.tensor_type.shape.dim, shapes[tensor.name]):
                dim.ClearField('dim_param')
                dim.dim_value = int(size)
    return model.SerializeToString()


def compile_onnx(runtime, onnx_path, shapes, threads):
    """Compile the ONNX model for inputs of `shapes` ({name: shape}) with `runtime`
    ('onnxruntime' or 'openvino'), float32, `threads` CPU threads.

    Returns run(inputs: {name: array}) -> list of numpy outputs in the graph's order.
    """
    if runtime == 'onnxruntime':
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # warnings about unused initialisers are not for users
        session = ort.InferenceSession(fixed_shape_model(onnx_path, shapes), options,
                                       providers=['CPUExecutionProvider'])
        return lambda inputs: session.run(None, inputs)
    if runtime == 'openvino':
        import openvino
        core = openvino.Core()
        model = core.read_model(onnx_path)
        model.reshape({name: list(shape) for name, shape in shapes.items()})
        compiled = core.compile_model(model, 'CPU', {
            'INFERENCE_NUM_THREADS': threads,
            # float32 always: on CPUs with AMX or avx512_bf16 OpenVINO would pick bfloat16
            'INFERENCE_PRECISION_HINT': 'f32',
            'PERFORMANCE_HINT': 'LATENCY',
        })
        request = compiled.create_infer_request()
        outputs = list(compiled.outputs)

        def run(inputs):
            results = request.infer(inputs)
            # copies: the request reuses its output buffers on the next call
            return [np.array(results[port]) for port in outputs]
        return run
    raise ValueError(f'unknown ONNX runtime {runtime!r}')


class _OnnxEngine:
    """Shared by the ONNX engines: export folder, input checks, one compiled model per shape."""

    name = None

    def __init__(self, model_dir, device='cpu', precision='float32', threads=None):
        from utils.deploy.engine import available_cpus
        from utils.deploy.export import load_metadata
        if device != 'cpu':
            raise ValueError(f'the {self.name} engine runs on the CPU; use --device cpu or another '
                             f'engine')
        if precision != 'float32':
            raise ValueError(f'the {self.name} engine runs in float32 only (lower precisions '
                             f'change the alpha and the refined patches)')
        self.model_dir = model_dir
        self.metadata = load_metadata(model_dir, 'onnx')
        self.options = dict(self.metadata['options'])
        self.onnx_path = os.path.join(model_dir, self.metadata['onnx']['file'])
        self.device = device
        self.precision = precision
        self.threads = threads or available_cpus()
        self._compiled = collections.OrderedDict()  # shape -> runner, most recent last
        self._check_runtime()

    def _check_runtime(self):
        """Import the runtime now, so that a missing package fails at construction."""
        import importlib
        importlib.import_module(self.name)

    def runner(self, shape):
        """The compiled model for inputs of `shape` (compiled on first use, then kept)."""
        shape = tuple(int(s) for s in shape)
        if shape in self._compiled:
            self._compiled.move_to_end(shape)
        else:
            self._compiled[shape] = compile_onnx(self.name, self.onnx_path,
                                                 {'src': shape, 'bgr': shape}, self.threads)
            while len(self._compiled) > MAX_SHAPES:
                self._compiled.popitem(last=False)
        return self._compiled[shape]

    def __call__(self, src, bgr):
        from model import check_inputs
        src = np.ascontiguousarray(src, dtype=np.float32)
        bgr = np.ascontiguousarray(bgr, dtype=np.float32)
        # the dygraph model checks its inputs itself; an exported graph cannot
        check_inputs(src, bgr, multiple=4)
        outputs = self.runner(src.shape)({'src': src, 'bgr': bgr})
        return dict(zip(OUTPUT_NAMES, outputs))


class OnnxRuntimeEngine(_OnnxEngine):
    """Runs an ONNX export with ONNX Runtime (CPU execution provider, all graph optimisations).

    Args: model_dir (an export folder holding model.onnx), device 'cpu', precision 'float32',
    threads (default: the CPUs this process may use). Call: as DygraphEngine.
    """

    name = 'onnxruntime'


class OpenVINOEngine(_OnnxEngine):
    """Runs an ONNX export with OpenVINO on the CPU, in float32, tuned for latency.

    Args: model_dir (an export folder holding model.onnx), device 'cpu', precision 'float32',
    threads (default: the CPUs this process may use). Call: as DygraphEngine.
    """

    name = 'openvino'
