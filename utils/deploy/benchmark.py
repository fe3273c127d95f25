"""Inference speed and memory benchmark (the official inference_speed_test.py, done right).

`benchmark.py` at the repository top is the command line; this module holds the logic.

Every configuration (backbone, resolution, backbone scale, sample pixels, batch size, engine,
precision, device) runs in its own child process, so that its peak memory is its own and one
engine's caches or threads cannot slow down the next. The child builds the engine (exporting
once for Paddle Inference, cached next to the weights), runs `warmup` untimed calls and `runs`
timed calls of engine(src, bgr) on numpy inputs (copies in and out included: what predict.py
pays), and prints one JSON line:

    {"kind": "latency", "backbone": ..., "resolution": "1920x1080", "engine": "inference",
     "median_ms": ..., "min_ms": ..., "max_ms": ..., "fps": ..., "peak_rss_mb": ..., ...}

The refiner samples exactly refine_sample_pixels / 16 patches (refine_prevent_oversampling off,
as the official speed test), so the content of the inputs does not matter; unless --weights is
given, the models get seeded random weights (saved once in the cache folder).

With --video, it also times the whole video path: decode a synthetic clip with OpenCV, run the
engine frame by frame (batch size frames at a time), composite on green and encode, reporting
frames per second end to end and the time per stage.

With --floor, it also times the convolutions alone (`time_floor`): the base network, and the
refiner's convs on already cropped windows. Their sum is a floor under the full model's
latency for these settings; the difference is what patch cropping, resampling and write-back
cost.

Load matters on a shared machine: each line records the load average before and after and the
process CPU time per call (cpu_ms_median), so noisy rows can be recognised.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from model.options import BACKBONES, REFINE_DEFAULTS
from utils.deploy.engine import DEVICES, ENGINES, PRECISIONS

# The official PyTorch code's speed on this kind of 2-core machine (the 'official' preset):
# (backbone, WxH, backbone_scale, sample_pixels) -> the measured range in ms.
REFERENCE_ROWS = [
    ('mobilenetv2', '1280x720', 0.25, 80_000, (210, 260)),
    ('mobilenetv2', '1920x1080', 0.25, 80_000, (325, 357)),
    ('mobilenetv2', '3840x2160', 0.125, 320_000, (1640, 1740)),
    ('resnet50', '1920x1080', 0.25, 80_000, (570, 605)),
    ('resnet50', '3840x2160', 0.125, 320_000, (1935, 2060)),
]


# ---------------------------------------------------------------------------------------------
# Machine description
# ---------------------------------------------------------------------------------------------

def cpu_model():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def peak_rss_mb():
    """Peak resident memory of this process (VmHWM), MB."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def machine():
    from utils.deploy.engine import available_cpus, cpu_flags
    import paddle
    return {'cpu': cpu_model(), 'cpus': available_cpus(), 'cpu_flags': cpu_flags(),
            'paddle': paddle.__version__, 'python': platform.python_version()}


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------

def default_cache_dir():
    from utils.deploy.export import user_cache_dir
    return os.path.join(user_cache_dir(), 'benchmark')


def random_weights(backbone, cache_dir, kernel_size=3, seed=0):
    """A .pdparams of a seeded randomly initialised MattingRefine (timing needs no training)."""
    path = os.path.join(cache_dir, f'random_{backbone}_k{kernel_size}_seed{seed}.pdparams')
    if not os.path.isfile(path):
        import paddle
        from model import MattingRefine
        from utils.convert_weights import save_pdparams
        paddle.seed(seed)
        model = MattingRefine(backbone, refine_kernel_size=kernel_size)
        os.makedirs(cache_dir, exist_ok=True)
        save_pdparams({k: v.numpy() for k, v in model.state_dict().items()}, path)
    return path


# ---------------------------------------------------------------------------------------------
# One configuration (runs in the child process)
# ---------------------------------------------------------------------------------------------

def make_inputs(batch, height, width, seed=0):
    """A synthetic scene: smooth background plate and, in src, a soft-edged textured blob over it.

    Timing does not depend on the content (exactly k patches are refined); the precision
    comparison (--compare-precision) wants a scene with edges rather than noise.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy, xx = yy / height, xx / width
    bgr = np.stack([0.2 + 0.6 * xx, 0.3 + 0.4 * yy, 0.5 + 0.3 * np.sin(6 * xx + 4 * yy)])
    radius = 0.3 + 0.03 * np.sin(40 * np.arctan2(yy - 0.5, xx - 0.5))
    alpha = np.clip((radius - np.hypot(xx - 0.5, (yy - 0.5) * height / width)) * 200, 0, 1)
    fgr = np.stack([0.8 - 0.5 * yy, 0.3 + 0.3 * (np.sin(30 * xx) > 0), 0.2 + 0.5 * xx])
    src = alpha * fgr + (1 - alpha) * bgr
    noise = rng.normal(0, 0.01, (2, batch, 3, height, width)).astype(np.float32)
    src = np.clip(src[None] + noise[0], 0, 1).astype(np.float32)
    bgr = np.clip(bgr[None] + noise[1], 0, 1).astype(np.float32)
    return src, bgr


def build_engine(cfg):
    from utils.deploy.engine import create_engine
    weights = cfg['weights'] or random_weights(cfg['backbone'], cfg['cache_dir'])
    return create_engine(
        weights, engine=cfg['engine'], device=cfg['device'], precision=cfg['precision'],
        threads=cfg['threads'], cache_dir=os.path.join(cfg['cache_dir'], 'exports'),
        backbone=cfg['backbone'], backbone_scale=cfg['backbone_scale'], refine_mode='sampling',
        refine_sample_pixels=cfg['sample_pixels'], refine_prevent_oversampling=False)


def _timed_calls(call, warmup, runs):
    """Call `warmup` times untimed, then `runs` times -> (wall seconds, CPU seconds, last output)."""
    for _ in range(warmup):
        out = call()
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        out = call()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu, out


def time_latency(cfg):
    """Median/min/max latency of engine(src, bgr) over cfg['runs'] runs after warm-up."""
    load_before = load_average()
    started = time.perf_counter()
    engine = build_engine(cfg)
    setup_s = time.perf_counter() - started
    width, height = cfg['width'], cfg['height']
    src, bgr = make_inputs(cfg['batch_size'], height, width)
    wall, cpu, out = _timed_calls(lambda: engine(src, bgr), cfg['warmup'], cfg['runs'])
    wall_ms = np.array(wall) * 1000
    median = float(np.median(wall_ms))
    refined = float(out['ref_sm'].reshape(cfg['batch_size'], -1).sum(axis=1).mean())
    result = {
        'kind': 'latency',
        'median_ms': round(median, 1), 'min_ms': round(float(wall_ms.min()), 1),
        'max_ms': round(float(wall_ms.max()), 1),
        'fps': round(cfg['batch_size'] * 1000 / median, 2),
        'cpu_ms_median': round(float(np.median(cpu)) * 1000, 1),
        'peak_rss_mb': peak_rss_mb(),
        'refined_patches_per_image': refined,
        'setup_s': round(setup_s, 1),
        'load_before': load_before, 'load_after': load_average(),
    }
    result.update(_gpu_memory(cfg))
    if cfg.get('compare_precision') and cfg['precision'] != 'float32':
        reference = build_engine(dict(cfg, precision='float32'))(src, bgr)
        result.update(precision_error(out, reference))
    return result


def _floor_layers(model):
    """(base, refiner convs) as two layers to export: MattingRefine.coarse on (src, bgr), and
    Refiner.refine_windows on already cropped windows."""
    import paddle

    class Base(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, src, bgr):
            return self.model.coarse(src, bgr)[:4]

    class RefinerConvs(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.refiner = model.refiner

        def forward(self, coarse, src_half, src_blocks):
            return self.refiner.refine_windows(coarse, src_half, src_blocks)

    return Base(), RefinerConvs()


def _time_predictor(config, inputs, warmup, runs):
    """Median wall time (ms) of a Paddle Inference predictor on named numpy inputs."""
    from utils.deploy.engine import predictor_runner
    run = predictor_runner(config)
    return float(np.median(_timed_calls(lambda: run(inputs), warmup, runs)[0])) * 1000


def time_floor(cfg):
    """What no rewrite of the patch handling can go below: the convolutions alone.

    Exports and times, with the same Paddle Inference settings as the full model, (1) the base
    network on the downsampled inputs (downsampling included) and (2) the refiner's four convs
    on k = sample_pixels / 16 windows that are already cropped. Their sum is the time of the
    model's convolutions; the full model's latency minus it is what cropping, resampling and
    writing patches back cost.
    """
    from paddle.static import InputSpec
    from model.weights import build_model
    from utils.deploy.engine import predictor_config
    from utils.deploy.export import PARAMS_FILE, PROGRAM_FILE, trace_and_save
    if cfg['engine'] != 'inference':
        raise ValueError('the floor is measured for the inference engine (--engine inference)')
    weights = cfg['weights'] or random_weights(cfg['backbone'], cfg['cache_dir'])
    model = build_model(weights, model_type='refine', backbone=cfg['backbone'],
                        backbone_scale=cfg['backbone_scale'], refine_mode='sampling',
                        refine_sample_pixels=cfg['sample_pixels'], refine_prevent_oversampling=False)
    base, convs = _floor_layers(model)
    batch, height, width = cfg['batch_size'], cfg['height'], cfg['width']
    src, bgr = make_inputs(batch, height, width)
    wh, nb = model.refiner.window_sizes
    k = batch * min(cfg['sample_pixels'] // 16, (height // 4) * (width // 4))
    rng = np.random.default_rng(0)
    windows = {'coarse': rng.random((k, 36, wh, wh), np.float32),
               'src_half': rng.random((k, 6, wh, wh), np.float32),
               'src_blocks': rng.random((k, 24, nb, nb), np.float32)}
    specs = {
        'base': (base, [InputSpec([None, 3, None, None], 'float32', 'src'),
                        InputSpec([None, 3, None, None], 'float32', 'bgr')], {'src': src, 'bgr': bgr}),
        'refiner_convs': (convs, [InputSpec([None, 36, wh, wh], 'float32', 'coarse'),
                                  InputSpec([None, 6, wh, wh], 'float32', 'src_half'),
                                  InputSpec([None, 24, nb, nb], 'float32', 'src_blocks')], windows),
    }
    result = {'kind': 'floor', 'refined_patches_per_image': k // batch}
    with tempfile.TemporaryDirectory(prefix='bgmv2-floor-') as tmp:
        for name, (layer, spec, inputs) in specs.items():
            trace_and_save(layer, os.path.join(tmp, name, 'model'), spec)
            config, _ = predictor_config(os.path.join(tmp, name, PROGRAM_FILE),
                                         os.path.join(tmp, name, PARAMS_FILE), cfg['device'],
                                         cfg['precision'], cfg['threads'])
            result[f'{name}_ms'] = round(_time_predictor(config, inputs, cfg['warmup'], cfg['runs']), 1)
    result['floor_ms'] = round(result['base_ms'] + result['refiner_convs_ms'], 1)
    result['peak_rss_mb'] = peak_rss_mb()
    return result


def time_part_profile(cfg):
    """The per-part split of utils.deploy.part_timing for the configuration's engine."""
    from model.weights import build_model
    from utils.deploy.engine import auto_engine_order
    from utils.deploy.part_timing import time_profile
    engine = cfg['engine']
    if engine == 'auto':
        engine = auto_engine_order()[0]
    weights = cfg['weights'] or random_weights(cfg['backbone'], cfg['cache_dir'])
    model = build_model(weights, model_type='refine', backbone=cfg['backbone'],
                        backbone_scale=cfg['backbone_scale'], refine_mode='sampling',
                        refine_sample_pixels=cfg['sample_pixels'], refine_prevent_oversampling=False)
    src, bgr = make_inputs(cfg['batch_size'], cfg['height'], cfg['width'])
    result = {'kind': 'profile', 'engine_used': engine}
    result.update(time_profile(model, src, bgr, engine, cfg['threads'], cfg['warmup'], cfg['runs']))
    result['peak_rss_mb'] = peak_rss_mb()
    return result


def precision_error(out, reference):
    """How far reduced-precision outputs are from float32 ones (alpha and refined patches)."""
    diff = np.abs(out['pha'] - reference['pha'])
    patches = reference['ref_sm'].size
    return {'alpha_error_vs_float32': {
        'max': round(float(diff.max()), 5), 'mean': round(float(diff.mean()), 6),
        'p99': round(float(np.percentile(diff, 99)), 5),
        'pha_sm_max': round(float(np.abs(out['pha_sm'] - reference['pha_sm']).max()), 5),
        'refined_patches_differing': round(float((out['ref_sm'] != reference['ref_sm']).sum()) / patches, 5)}}


def _gpu_memory(cfg):
    if cfg['device'] != 'gpu':
        return {}
    import paddle
    try:
        return {'peak_gpu_mb': round(paddle.device.cuda.max_memory_allocated() / 2 ** 20, 1),
                'peak_gpu_note': 'allocated by Paddle (dygraph); Paddle Inference allocations '
                                 'are not counted'}
    except Exception:
        return {}


def write_test_video(path, frames, width, height, fps=30, seed=0):
    """A synthetic clip (moving disc over a gradient) and its background plate (PNG)."""
    import cv2
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    plate = np.stack([xx / width, yy / height, 0.5 + 0 * xx], axis=2)
    plate = (plate * 255).astype(np.uint8)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot write {path}')
    rng = np.random.default_rng(seed)
    for t in range(frames):
        frame = plate.copy()
        cx, cy = int(width * (0.3 + 0.4 * t / max(1, frames))), height // 2
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < (min(width, height) / 4) ** 2
        frame[mask] = rng.integers(0, 255, 3, dtype=np.uint8)
        writer.write(frame)
    writer.release()
    bgr_path = os.path.splitext(path)[0] + '_bgr.png'
    cv2.imwrite(bgr_path, plate)
    return bgr_path


def time_video(cfg):
    """End-to-end video frames/s: decode, infer (batch_size frames at a time), composite, encode."""
    import cv2
    engine = build_engine(cfg)
    width, height, batch = cfg['width'], cfg['height'], cfg['batch_size']
    frames = cfg['video_frames']
    with tempfile.TemporaryDirectory(prefix='bgmv2_bench_') as tmp:
        clip = os.path.join(tmp, 'clip.mp4')
        plate_path = write_test_video(clip, frames + cfg['warmup'] * batch, width, height)
        plate = cv2.imread(plate_path)[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255
        green = np.array([120, 255, 155], np.float32).reshape(1, 3, 1, 1) / 255
        capture = cv2.VideoCapture(clip)
        writer = cv2.VideoWriter(os.path.join(tmp, 'com.mp4'), cv2.VideoWriter_fourcc(*'mp4v'), 30,
                                 (width, height))
        stages = {'decode': 0.0, 'infer': 0.0, 'encode': 0.0}
        done, timed = 0, 0
        started = None
        load_before = load_average()
        while True:
            t0 = time.perf_counter()
            batch_frames = []
            for _ in range(batch):
                ok, frame = capture.read()
                if not ok:
                    break
                batch_frames.append(frame[:, :, ::-1].transpose(2, 0, 1))
            if not batch_frames:
                break
            src = np.stack(batch_frames).astype(np.float32) / 255
            t1 = time.perf_counter()
            out = engine(src, np.repeat(plate, len(batch_frames), axis=0))
            t2 = time.perf_counter()
            com = out['fgr'] * out['pha'] + green * (1 - out['pha'])
            com = (np.clip(com, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)[:, :, :, ::-1]
            for frame in com:
                writer.write(np.ascontiguousarray(frame))
            t3 = time.perf_counter()
            done += len(batch_frames)
            if done <= cfg['warmup'] * batch:
                continue  # warm-up batches are not timed
            if started is None:
                started = t0
            timed += len(batch_frames)
            stages['decode'] += t1 - t0
            stages['infer'] += t2 - t1
            stages['encode'] += t3 - t2
        total = time.perf_counter() - started if started else float('nan')
        capture.release()
        writer.release()
    return {
        'kind': 'video', 'frames': timed, 'fps': round(timed / total, 2),
        'decode_ms_per_frame': round(stages['decode'] / timed * 1000, 1),
        'infer_ms_per_frame': round(stages['infer'] / timed * 1000, 1),
        'composite_encode_ms_per_frame': round(stages['encode'] / timed * 1000, 1),
        'peak_rss_mb': peak_rss_mb(), 'load_before': load_before, 'load_after': load_average(),
    }


def run_config(cfg):
    """Run one configuration in this process; returns its JSON-ready result."""
    import paddle
    paddle.set_device(cfg['device'])
    result = {k: cfg[k] for k in ('backbone', 'resolution', 'backbone_scale', 'sample_pixels',
                                  'batch_size', 'engine', 'precision', 'device', 'threads',
                                  'runs', 'warmup')}
    result.update({'refine_mode': 'sampling', 'prevent_oversampling': False,
                   'weights': cfg['weights'] or 'random'})
    try:
        timer = {'video': time_video, 'floor': time_floor,
                 'profile': time_part_profile}.get(cfg['kind'], time_latency)
        result.update(timer(cfg))
    except Exception as e:  # report the failure as a line instead of losing the whole table
        result.update({'kind': cfg['kind'], 'error': f'{type(e).__name__}: {e}'.strip()[:500],
                       'peak_rss_mb': peak_rss_mb()})
    result['machine'] = machine()
    result['time'] = time.strftime('%Y-%m-%dT%H:%M:%S')
    return result


# ---------------------------------------------------------------------------------------------
# Parent: configurations, child processes, output
# ---------------------------------------------------------------------------------------------

def parse_resolution(text):
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'resolution must be WIDTHxHEIGHT, got {text!r}') from None
    if width % 4 or height % 4:
        raise argparse.ArgumentTypeError(f'width and height must be divisible by 4, got {text}')
    return f'{width}x{height}'


def configurations(args):
    """The list of child configurations for the parsed arguments."""
    if args.preset == 'official':
        rows = [(b, r, s, p) for b, r, s, p, _ in REFERENCE_ROWS]
    else:
        rows = [(b, r, s, p) for b in args.backbone for r in args.resolution
                for s in args.backbone_scale for p in args.sample_pixels]
    kinds = (['latency'] + (['video'] if args.video else []) + (['floor'] if args.floor else [])
             + (['profile'] if args.profile else []))
    if args.profile_only:
        kinds = ['profile']
    from utils.deploy.engine import available_cpus
    # recorded as used: the default is every CPU this process may run on
    threads = args.threads or (available_cpus() if args.device == 'cpu' else None)
    configs = []
    for backbone, resolution, scale, pixels in rows:
        width, height = (int(v) for v in resolution.split('x'))
        for batch in args.batch_size:
            for engine in args.engine:
                for precision in args.precision:
                    for kind in kinds:
                        if kind == 'floor' and engine != 'inference':
                            continue
                        configs.append({
                            'kind': kind, 'backbone': backbone, 'resolution': resolution,
                            'width': width, 'height': height, 'backbone_scale': scale,
                            'sample_pixels': pixels, 'batch_size': batch, 'engine': engine,
                            'precision': precision, 'device': args.device,
                            'threads': threads, 'runs': args.runs, 'warmup': args.warmup,
                            'video_frames': args.video_frames, 'weights': args.weights,
                            'cache_dir': args.cache_dir,
                            'compare_precision': args.compare_precision})
    return configs


def run_child(cfg, timeout):
    """Run one configuration in a fresh interpreter; returns its result dict."""
    env = dict(os.environ)
    if cfg['threads']:
        # dygraph CPU kernels use OpenMP/MKL threads; Paddle Inference gets cfg['threads']
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(cfg['threads'])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env['PYTHONPATH'] = root + os.pathsep + env.get('PYTHONPATH', '')
    command = [sys.executable, '-W', 'ignore', '-m', 'utils.deploy.benchmark', '--child', json.dumps(cfg)]
    try:
        proc = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(_summary(cfg), error=f'timed out after {timeout} s')
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith('{'):
            return json.loads(line)
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return dict(_summary(cfg), error=f'child exited with {proc.returncode}: ' + ' | '.join(tail))


def _summary(cfg):
    keys = ('kind', 'backbone', 'resolution', 'backbone_scale', 'sample_pixels', 'batch_size',
            'engine', 'precision', 'device', 'threads')
    return {k: cfg[k] for k in keys}


PRESETS = ('official',)
# earlier spelling of the 'official' preset, still accepted
_PRESET_ALIASES = {'issue4': 'official'}


def _preset(text):
    return _PRESET_ALIASES.get(text, text)


def build_parser():
    parser = argparse.ArgumentParser(
        description='Latency, throughput and peak memory of BackgroundMattingV2 inference, one '
                    'JSON line per configuration (each run in its own process).',
        epilog='examples:\n'
               '  python benchmark.py --preset official --engine dygraph inference\n'
               '  python benchmark.py --backbone mobilenetv2 --resolution 1920x1080 --video\n'
               '  python benchmark.py --device gpu --precision float32 float16',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--preset', type=_preset, choices=PRESETS,
                        help="official: the five rows of the official figures (MobileNetV2 720p/1080p/"
                             "4K, ResNet-50 1080p/4K); overrides backbone/resolution/scale/pixels")
    parser.add_argument('--backbone', nargs='+', default=['mobilenetv2'], choices=BACKBONES)
    parser.add_argument('--resolution', nargs='+', type=parse_resolution, default=['1920x1080'],
                        help='WIDTHxHEIGHT (default: 1920x1080)')
    parser.add_argument('--backbone-scale', nargs='+', type=float, default=[REFINE_DEFAULTS.backbone_scale])
    parser.add_argument('--sample-pixels', nargs='+', type=int, default=[REFINE_DEFAULTS.refine_sample_pixels])
    parser.add_argument('--batch-size', nargs='+', type=int, default=[1])
    parser.add_argument('--engine', nargs='+', default=['auto'], choices=ENGINES,
                        help='default: auto (what predict.py runs)')
    parser.add_argument('--precision', nargs='+', default=['float32'], choices=PRECISIONS)
    parser.add_argument('--device', default='cpu', choices=DEVICES)
    parser.add_argument('--threads', type=int, default=None,
                        help='CPU threads (default: all available)')
    parser.add_argument('--runs', type=int, default=10, help='timed runs (default: 10)')
    parser.add_argument('--warmup', type=int, default=3, help='untimed runs first (default: 3)')
    parser.add_argument('--video', action='store_true',
                        help='also time the video path end to end (decode, infer, encode)')
    parser.add_argument('--video-frames', type=int, default=30, help='timed frames (default: 30)')
    parser.add_argument('--floor', action='store_true',
                        help='also time the convolutions alone (base network; refiner convs on '
                             'pre-cropped windows) for inference rows: the floor under the latency')
    parser.add_argument('--profile', action='store_true',
                        help='also time the model part by part (base, select, upsample, crop, '
                             'refine, write_back) on each engine (utils.deploy.part_timing)')
    parser.add_argument('--profile-only', action='store_true', help='only the --profile rows')
    parser.add_argument('--vs-official', metavar='PYTHON',
                        help='time each row interleaved with the official PyTorch code run by this '
                             'Python (torch + backgroundmattingv2 installed; see '
                             '../shared/official-speed/README.md) and report ratios; --runs calls '
                             'per round')
    parser.add_argument('--official-code', metavar='DIR',
                        help='with --vs-official: a checkout holding the official model/ package '
                             '(default: the installed backgroundmattingv2)')
    parser.add_argument('--rounds', type=int, default=8,
                        help='with --vs-official: rounds of calls in turn (default: 8)')
    parser.add_argument('--compare-precision', action='store_true',
                        help='for bfloat16/float16 rows, also report the alpha error against a '
                             'float32 run of the same engine (meaningful with trained --weights)')
    parser.add_argument('--weights', help='weights to time (default: seeded random weights)')
    parser.add_argument('--cache-dir', default=default_cache_dir(),
                        help='random weights and exports are kept here (default: %(default)s)')
    parser.add_argument('--output', help='also append the JSON lines to this file')
    parser.add_argument('--timeout', type=float, default=3600, help='per configuration, seconds')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.child:
        print(json.dumps(run_config(json.loads(args.child))), flush=True)
        return 0
    if args.worker:
        from utils.deploy.compare import engine_worker_main
        return engine_worker_main(json.loads(args.worker))
    if args.weights and (args.preset or len(args.backbone) > 1):
        print('error: --weights holds one backbone; use it with one --backbone', file=sys.stderr)
        return 2
    failures = 0
    if args.vs_official:
        results = versus_official(args)
    else:
        results = (run_child(cfg, args.timeout) for cfg in configurations(args))
    for result in results:
        if 'machine' not in result:  # failures reported by the parent
            result['machine'] = machine()
        failures += 'error' in result
        line = json.dumps(result)
        print(line, flush=True)
        if args.output:
            with open(args.output, 'a') as f:
                f.write(line + '\n')
    return 1 if failures else 0


def versus_official(args):
    """Rows timed interleaved with the official code (utils.deploy.compare), one per engine."""
    from utils.deploy.compare import compare_row
    rows = {}
    for cfg in configurations(args):
        if cfg['kind'] == 'latency':
            key = (cfg['backbone'], cfg['resolution'], cfg['backbone_scale'], cfg['sample_pixels'],
                   cfg['batch_size'])
            rows.setdefault(key, []).append(cfg)
    for configs in rows.values():
        try:
            yield from compare_row(configs, args.vs_official, args.rounds, args.runs,
                                   args.official_code)
        except (RuntimeError, OSError) as e:
            yield dict(_summary(configs[0]), kind='versus_official', error=str(e)[:500])


if __name__ == '__main__':
    sys.exit(main())
