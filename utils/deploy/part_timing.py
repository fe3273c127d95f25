"""Where the time goes: the model split into its parts, each timed alone on one engine.

    python benchmark.py --profile --engine onnxruntime openvino inference --resolution 1920x1080

Parts (MattingRefine in sampling mode, in the order they run):
    base        the base network on the downsampled inputs (downsampling included)
    select      the error map resized to quarter resolution, top-k, the patch indices
    upsample    the coarse pha and fgr resized to full resolution
    crop        the windows the refiner reads around each patch (coarse, src/bgr at half and
                full resolution)
    refine      the refiner's four convolutions on those windows
    write_back  the refined patches written into the full-resolution pha and fgr, final clamps

Each part is exported on its own for the engine (the ONNX or Paddle program of that part
alone, traced exactly as in the whole model: same code in model/refiner.py), fed the
intermediate tensors of an eager run on the benchmark's scene, and timed over the same number
of runs as the whole model, which is timed too: the sum of the parts against the whole shows
what splitting costs or hides (parts cannot overlap or share memory with their neighbours).
"""
import os
import tempfile
import time

import numpy as np

PARTS = ('base', 'select', 'upsample', 'crop', 'refine', 'write_back')


def _part_layers(model):
    """{part: (layer, input names)}: layers calling the model's own methods."""
    import paddle

    class Part(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.model = model  # the parameters come with it

    class Base(Part):
        def forward(self, src, bgr):
            return self.model.coarse(src, bgr)[:4]

    class Select(Part):
        def forward(self, src, err):
            return self.model.refiner.select(src, err)

    class Upsample(Part):
        def forward(self, src, pha, fgr):
            return self.model.refiner.upsample(src, pha, fgr)

    class Crop(Part):
        def forward(self, src, bgr, pha, fgr, hid, idx):
            return self.model.refiner.crop(src, bgr, pha, fgr, hid, idx)

    class Refine(Part):
        def forward(self, coarse, src_half, src_blocks):
            return self.model.refiner.refine_windows(coarse, src_half, src_blocks)

    class WriteBack(Part):
        def forward(self, pha_out, fgr_out, patches, idx, ref, src):
            pha, fgr = self.model.refiner.write_back(pha_out, fgr_out, patches, idx, ref)
            return paddle.clip(pha, 0.0, 1.0), paddle.clip(fgr + src, 0.0, 1.0)

    return {
        'base': (Base(), ('src', 'bgr')),
        'select': (Select(), ('src', 'err')),
        'upsample': (Upsample(), ('src', 'pha', 'fgr')),
        'crop': (Crop(), ('src', 'bgr', 'pha', 'fgr', 'hid', 'idx')),
        'refine': (Refine(), ('coarse', 'src_half', 'src_blocks')),
        'write_back': (WriteBack(), ('pha_out', 'fgr_out', 'patches', 'idx', 'ref', 'src')),
    }


def intermediate_tensors(model, src, bgr):
    """{name: numpy array} of every part's inputs, from an eager run on (src, bgr).

    idx carries the guard patch that traced graphs add (model.ops.append_guard_patch), so the
    parts see the tensors the exported whole model sees.
    """
    import paddle
    refiner = model.refiner
    with paddle.no_grad():
        s, b = paddle.to_tensor(src), paddle.to_tensor(bgr)
        pha, fgr, err, hid = model.coarse(s, b)[:4]
        idx, ref = refiner.select(s, err)
        idx = paddle.concat([idx, paddle.zeros([1, 3], idx.dtype)])
        pha_out, fgr_out = refiner.upsample(s, pha, fgr)
        coarse, src_half, src_blocks = refiner.crop(s, b, pha, fgr, hid, idx)
        patches = refiner.refine_windows(coarse, src_half, src_blocks)
    tensors = dict(src=s, bgr=b, pha=pha, fgr=fgr, err=err, hid=hid, idx=idx, ref=ref,
                   pha_out=pha_out, fgr_out=fgr_out, coarse=coarse, src_half=src_half,
                   src_blocks=src_blocks, patches=patches)
    return {k: v.numpy() for k, v in tensors.items()}


def _specs(names, arrays):
    from paddle.static import InputSpec
    return [InputSpec(list(arrays[n].shape), str(arrays[n].dtype), n) for n in names]


def _runner(engine, layer, names, arrays, folder, threads):
    """A callable running `layer` on `arrays` with `engine` (its export made in `folder`)."""
    import paddle
    inputs = {n: np.ascontiguousarray(arrays[n]) for n in names}
    if engine == 'dygraph':
        tensors = [paddle.to_tensor(inputs[n]) for n in names]

        def run():
            with paddle.no_grad():
                return layer(*tensors)
        return run
    from model import onnx_tracing
    from utils.deploy.export import ONNX_FILE, PARAMS_FILE, PROGRAM_FILE, export_onnx, trace_and_save
    specs = _specs(names, inputs)
    if engine == 'inference':
        from utils.deploy.engine import predictor_config, predictor_runner
        trace_and_save(layer, os.path.join(folder, 'model'), specs)
        config, _ = predictor_config(os.path.join(folder, PROGRAM_FILE),
                                     os.path.join(folder, PARAMS_FILE), 'cpu', 'float32', threads)
        run = predictor_runner(config)
        return lambda: run(inputs)
    from utils.deploy.onnx_engines import compile_onnx
    with onnx_tracing():
        trace_and_save(layer, os.path.join(folder, 'trace', 'model'), specs)
    onnx_path = os.path.join(folder, ONNX_FILE)
    export_onnx(os.path.join(folder, 'trace'), onnx_path)
    compiled = compile_onnx(engine, onnx_path, {n: a.shape for n, a in inputs.items()}, threads)
    return lambda: compiled(inputs)


def _median_ms(run, warmup, runs):
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1000, 2)


def time_profile(model, src, bgr, engine, threads, warmup=2, runs=5):
    """{'parts_ms': {part: median ms}, 'sum_ms', 'whole_ms'} for `engine` ('dygraph',
    'inference', 'onnxruntime' or 'openvino') on a MattingRefine in sampling mode."""
    if model.refiner.mode != 'sampling':
        raise ValueError('the profile splits the sampling mode')
    arrays = intermediate_tensors(model, src, bgr)
    parts = {}
    with tempfile.TemporaryDirectory(prefix='bgmv2-profile-') as tmp:
        for name, (layer, names) in _part_layers(model).items():
            run = _runner(engine, layer, names, arrays, os.path.join(tmp, name), threads)
            parts[name] = _median_ms(run, warmup, runs)
        whole = _runner(engine, model, ('src', 'bgr'), arrays, os.path.join(tmp, 'whole'), threads)
        whole_ms = _median_ms(whole, warmup, runs)
    return {'parts_ms': parts, 'sum_ms': round(sum(parts.values()), 1), 'whole_ms': whole_ms,
            'refined_patches_per_image': int(arrays['idx'].shape[0] - 1) / src.shape[0],
            **conv_flops(model, src, bgr)}


def conv_flops(model, src, bgr):
    """Convolution FLOPs (2 x multiply-adds) of one eager forward pass on (src, bgr), in GFLOP:
    {'base_gflop', 'refiner_gflop'} (refiner: as computed here, in block space after its
    upsampling; the official formulation differs by a few per cent).

    Counts both the nn.Conv2D layers and the functional convolutions (model.ops.conv_parts and
    the refiner call F.conv2d with the layers' weights): hooks on layers alone miss the latter.
    """
    import paddle
    import paddle.nn.functional as F
    counted = [0]

    def count(out, weight):
        kernel = weight.shape[1] * weight.shape[2] * weight.shape[3]
        counted[0] += 2 * int(np.prod(out.shape)) * kernel  # weight.shape[1] is C_in / groups

    functional = F.conv2d

    def conv2d(x, weight, *args, **kwargs):
        out = functional(x, weight, *args, **kwargs)
        count(out, weight)
        return out

    hooks = [layer.register_forward_post_hook(lambda layer, inputs, out: count(out, layer.weight))
             for layer in model.sublayers() if isinstance(layer, paddle.nn.Conv2D)]
    F.conv2d = conv2d
    try:
        with paddle.no_grad():
            s, b = paddle.to_tensor(src), paddle.to_tensor(bgr)
            pha, fgr, err, hid = model.coarse(s, b)[:4]
            base = counted[0]
            model.refiner(s, b, pha, fgr, err, hid)
    finally:
        F.conv2d = functional
        for hook in hooks:
            hook.remove()
    return {'base_gflop': round(base / 1e9, 2), 'refiner_gflop': round((counted[0] - base) / 1e9, 2)}
