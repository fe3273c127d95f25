"""Export MattingRefine for Paddle Inference and for ONNX engines (ONNX Runtime, OpenVINO).

Command line:
    python -m utils.deploy.export WEIGHTS OUT_DIR [--backbone-scale 0.25] [--refine-mode sampling] ...
    python -m utils.deploy.export WEIGHTS OUT_DIR --formats onnx  # only model.onnx
    python -m utils.deploy.export WEIGHTS OUT_DIR --onnx          # both formats
    python -m utils.deploy.export WEIGHTS OUT_DIR --check         # compare with the dygraph model

OUT_DIR then holds
    model.json, model.pdiparams   format 'paddle' (default): the program (Paddle 3 PIR format)
                                  and its parameters for Paddle Inference;
    model.onnx                    format 'onnx': the ONNX graph (opset 16, paddle2onnx) for
                                  ONNX Runtime and OpenVINO, no `If` in it;
    export.json                   the formats, the model options baked into the graphs
                                  (backbone, backbone_scale, refine_*), the weights' sha256, the
                                  Paddle version, the file names and the output names.
Both graphs take inputs `src`, `bgr` of shape [None, 3, None, None] (float32, 0..1, H and W
divisible by 4) and give pha, fgr, pha_sm, fgr_sm, err_sm, ref_sm in that order (as
MattingRefine).

The refine options are fixed at export time (they shape the graph); the engines of
utils.deploy.engine read them back from export.json. Exports are written to a temporary folder
next to OUT_DIR and renamed into place, so a crash or a concurrent export never leaves a
half-written model behind.

`cached_export(weights, format=..., **options)` exports once per (weights content, options,
format, Paddle version, model source code) into the user's cache (`export_cache_dir()`:
$BGMV2_CACHE_DIR, else $XDG_CACHE_HOME/bgmv2-paddle, else ~/.cache/bgmv2-paddle; then
`exports/<key>/`) and reuses it; nothing is written beside the weights, so read-only weights
folders work. The cache keeps the CACHE_MAX_ENTRIES most recently used exports (about 20 MB
each for MobileNetV2) and deletes the others. This is what `utils.deploy.engine.create_engine`
calls for its exported engines.

Why the exported graph looks the way it does (oneDNN can run it; see model/ops.py): Paddle
3.3.1's Inference predictor with oneDNN fails on interp ops (F.interpolate) in PIR models, so
the traced model resizes with convolutions, matmuls and concats instead; and its
`operator_reshape_onednn_fuse_pass` builds invalid programs from transpose + reshape chains
with dynamic shapes, so `utils.deploy.engine` switches that one pass off (ONEDNN_DELETED_PASSES).
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time

from model.options import BACKBONES, OUTPUT_NAMES, REFINE_DEFAULTS, REFINE_KERNEL_SIZES, REFINE_MODES
from model.weights import CheckpointError

EXPORT_FORMAT = 1  # bump when the traced graph changes so that old cached exports are not reused
METADATA_FILE = 'export.json'
PROGRAM_FILE = 'model.json'
PARAMS_FILE = 'model.pdiparams'
CACHE_ENV = 'BGMV2_CACHE_DIR'  # overrides the user cache folder (export_cache_dir)
CACHE_APP_NAME = 'bgmv2-paddle'
CACHE_MAX_ENTRIES = 8  # exports kept, most recently used first (20-150 MB each)
ONNX_FILE = 'model.onnx'
ONNX_OPSET = 16
FORMATS = ('paddle', 'onnx')  # what an export folder can hold
# MattingRefine keyword arguments that are baked into an export, with their defaults.
MODEL_DEFAULTS = dict(REFINE_DEFAULTS.as_dict(), refine_kernel_size=None)  # None: the weights' own


class ExportError(RuntimeError):
    """Export failed or an export folder is unusable; the message says why."""


class IncompatibleWeightsError(ExportError, CheckpointError):
    """The weights cannot make the requested model (MattingBase weights, another backbone).

    A CheckpointError too: a problem with the input, which no other engine would get past.
    """


def _given_options(options):
    """The defaults, updated with the options given (None: the default); TypeError if unknown."""
    unknown = set(options) - set(MODEL_DEFAULTS)
    if unknown:
        raise TypeError(f'unknown model options: {", ".join(sorted(unknown))}')
    given = dict(MODEL_DEFAULTS)
    given.update({k: v for k, v in options.items() if v is not None})
    return given


def resolve_options(weights, backbone=None, **options):
    """Complete model options: defaults, plus backbone and refiner kernel size from the weights.

    weights: a path or a `model.Weights`.
    """
    from model import Weights
    resolved = _given_options(options)
    if not isinstance(weights, Weights):
        weights = Weights(weights)
    config = weights.config
    if config['model_type'] != 'refine':
        raise IncompatibleWeightsError(
            f'{weights.path}: holds MattingBase weights (no refiner); use MattingRefine weights (an '
            f'official pytorch_*.pth, or a checkpoint of the refine training stage)')
    if backbone is not None and backbone != config['backbone']:
        raise IncompatibleWeightsError(
            f'{weights.path}: holds {config["backbone"]} weights, but backbone {backbone} was '
            f'requested; pass --backbone {config["backbone"]} or other weights')
    if resolved['refine_kernel_size'] is None:
        resolved['refine_kernel_size'] = config['refine_kernel_size']
    resolved['backbone'] = config['backbone']
    return resolved


def trace_and_save(model, prefix, spec=None):
    """paddle.jit.save a traced layer as `prefix` + PROGRAM_FILE / PARAMS_FILE suffixes.

    spec: its InputSpecs; default: the matting models' src, bgr (B, 3, H, W) float32.
    """
    import warnings
    import paddle
    from paddle.static import InputSpec
    if spec is None:
        spec = [InputSpec([None, 3, None, None], 'float32', 'src'),
                InputSpec([None, 3, None, None], 'float32', 'bgr')]
    from utils.library_logging import PADDLE_PIR_OUT_WARNING, filtered_stderr
    with warnings.catch_warnings(), filtered_stderr(PADDLE_PIR_OUT_WARNING):
        # raised inside Paddle (zeros_like while tracing), nothing to act on
        warnings.filterwarnings('ignore', message=".*'place' interface for pir graph mode")
        static = paddle.jit.to_static(model, input_spec=spec, full_graph=True)
        paddle.jit.save(static, prefix)


def export_model(weights, out_dir, backbone=None, formats=('paddle',), overwrite=True, **options):
    """Export `weights` with the given MattingRefine options to `out_dir`; returns the metadata.

    formats: any of FORMATS: 'paddle' (model.json + model.pdiparams for Paddle Inference) and
    'onnx' (model.onnx for ONNX Runtime and OpenVINO; needs paddle2onnx). Each is traced for
    its engine (model.ops): the two graphs compute the same function.
    options: backbone_scale, refine_mode, refine_sample_pixels, refine_threshold,
    refine_kernel_size, refine_prevent_oversampling (defaults as MattingRefine; the kernel size
    defaults to the weights' own).
    """
    import paddle
    from model import Weights, build_model, onnx_tracing
    formats = tuple(f for f in FORMATS if f in formats)
    if not formats or set(formats) != set(formats) & set(FORMATS):
        raise ValueError(f'formats must be a non-empty subset of {FORMATS}')
    if not isinstance(weights, Weights):
        weights = Weights(weights)  # read and hashed once, parsed once
    options = resolve_options(weights, backbone, **options)
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir) and not overwrite:
        raise ExportError(f'{out_dir} exists')
    # loaded before any folder is made: weights that fail to load leave nothing behind
    model_options = {k: v for k, v in options.items() if k != 'backbone'}
    model = build_model(weights, model_type='refine', backbone=options['backbone'], **model_options)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.export-', dir=parent)
    try:
        started = time.time()
        metadata = {
            'format': EXPORT_FORMAT,
            'formats': list(formats),
            'options': options,
            'weights': os.path.abspath(weights.path),
            'weights_sha256': weights.sha256,
            'paddle_version': paddle.__version__,
            'model_code_sha256': model_code_sha256(),
            'program': None,
            'params': None,
            'inputs': {'src': [None, 3, None, None], 'bgr': [None, 3, None, None]},
            'outputs': list(OUTPUT_NAMES),
        }
        if 'paddle' in formats:
            trace_and_save(model, os.path.join(tmp, 'model'))
            for name in (PROGRAM_FILE, PARAMS_FILE):
                if not os.path.isfile(os.path.join(tmp, name)):
                    raise ExportError(f'paddle.jit.save did not write {name} (Paddle '
                                      f'{paddle.__version__}; this code expects the PIR format of '
                                      f'Paddle 3)')
            metadata.update(program=PROGRAM_FILE, params=PARAMS_FILE)
        if 'onnx' in formats:
            trace_dir = os.path.join(tmp, 'onnx-trace')
            with onnx_tracing():
                trace_and_save(model, os.path.join(trace_dir, 'model'))
            metadata['onnx'] = export_onnx(trace_dir, os.path.join(tmp, ONNX_FILE))
            shutil.rmtree(trace_dir)
        metadata['export_seconds'] = round(time.time() - started, 2)
        with open(os.path.join(tmp, METADATA_FILE), 'w') as f:
            json.dump(metadata, f, indent=1)
        _replace_dir(tmp, out_dir)
        return metadata
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _replace_dir(src, dst):
    """Move the finished export `src` to `dst`, replacing an older export there."""
    if os.path.exists(dst):
        old = tempfile.mkdtemp(prefix='.old-export-', dir=os.path.dirname(dst))
        os.rename(dst, os.path.join(old, 'x'))
        os.rename(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(src, dst)


def load_metadata(model_dir, format='paddle'):
    """export.json of an export folder, after checking that the files of `format` are there
    (format None: of every format the folder holds)."""
    path = os.path.join(model_dir, METADATA_FILE)
    if not os.path.isfile(path):
        raise ExportError(f'{model_dir}: no {METADATA_FILE}; not a folder written by '
                          f'`python -m utils.deploy.export` (re-export the weights)')
    with open(path) as f:
        metadata = json.load(f)
    formats = metadata.setdefault('formats', ['paddle'])
    if format is not None and format not in formats:
        flag = ' --onnx' if format == 'onnx' else ''
        raise ExportError(f'{model_dir}: the export has no {format} model; re-export with '
                          f'`python -m utils.deploy.export WEIGHTS OUT_DIR{flag}`')
    files = {'paddle': [metadata['program'], metadata['params']],
             'onnx': [metadata['onnx']['file']] if 'onnx' in formats else []}
    for name in sum((files[f] for f in ([format] if format else formats)), []):
        if not os.path.isfile(os.path.join(model_dir, name)):
            raise ExportError(f'{model_dir}: {name} is missing; re-export the weights')
    return metadata


def model_code_sha256():
    """Hash of the model's source files: a code change must not reuse exports of the old graph."""
    import model
    folder = os.path.dirname(os.path.abspath(model.__file__))
    digest = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        if name.endswith('.py'):
            digest.update(name.encode())
            with open(os.path.join(folder, name), 'rb') as f:
                digest.update(f.read())
    return digest.hexdigest()


def cache_key(weights_sha256, options, formats=('paddle',)):
    import paddle
    blob = json.dumps({'weights': weights_sha256, 'options': options, 'format': EXPORT_FORMAT,
                       'formats': sorted(formats),
                       'paddle': paddle.__version__, 'model_code': model_code_sha256()},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def user_cache_dir():
    """The project's folder in the user's cache: $BGMV2_CACHE_DIR, else XDG's cache folder."""
    if os.environ.get(CACHE_ENV):
        return os.path.abspath(os.path.expanduser(os.environ[CACHE_ENV]))
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, CACHE_APP_NAME)


def export_cache_dir():
    """Where cached_export keeps its exports by default: <user_cache_dir()>/exports."""
    return os.path.join(user_cache_dir(), 'exports')


def cached_export(weights, backbone=None, cache_dir=None, max_entries=CACHE_MAX_ENTRIES,
                  format='paddle', **options):
    """Export once per (weights content, options, format, Paddle version) and reuse; returns the
    folder. format: 'paddle' or 'onnx' (see export_model).

    The key is made of the options as given, so a cached export is found without parsing the
    weights; the file is read and hashed once, and parsed only when it must be exported.
    cache_dir: default export_cache_dir(). After an export, all but the `max_entries` most
    recently used exports there are deleted (None keeps all).
    """
    from model import Weights
    given = dict(_given_options(options), backbone=backbone)
    loaded = Weights(weights)
    key = cache_key(loaded.sha256, given, (format,))
    cache_dir = cache_dir or export_cache_dir()
    out_dir = os.path.join(cache_dir, key)
    try:
        load_metadata(out_dir, format)
        _mark_used(out_dir)
        return out_dir
    except ExportError:
        pass
    try:
        export_model(loaded, out_dir, backbone=backbone, formats=(format,), **options)
    except OSError:
        # another process may have renamed its (identical) export into place first
        load_metadata(out_dir, format)
    _mark_used(out_dir)
    if max_entries:
        evict_exports(cache_dir, max_entries, keep=out_dir)
    return out_dir


def _mark_used(model_dir):
    """Record a use (the metadata file's mtime) for the least-recently-used eviction."""
    try:
        os.utime(os.path.join(model_dir, METADATA_FILE))
    except OSError:  # a read-only shared cache still serves its exports
        pass


def evict_exports(cache_dir, max_entries, keep=None):
    """Delete all but the `max_entries` most recently used exports in cache_dir; returns them.

    Only folders holding an export.json are considered (and half-written `.export-*` folders
    older than a day, left by a killed process); `keep` is never deleted.
    """
    entries, removed = [], []
    try:
        names = os.listdir(cache_dir)
    except OSError:
        return removed
    for name in names:
        path = os.path.join(cache_dir, name)
        try:
            if name.startswith('.') and time.time() - os.path.getmtime(path) > 86400:
                shutil.rmtree(path, ignore_errors=True)
            elif not name.startswith('.'):
                entries.append((os.path.getmtime(os.path.join(path, METADATA_FILE)), path))
        except OSError:
            continue  # not an export, or removed meanwhile by another process
    entries.sort(reverse=True)
    for _, path in entries[max_entries:]:
        if keep is None or os.path.abspath(path) != os.path.abspath(keep):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def export_onnx(trace_dir, onnx_path, opset=ONNX_OPSET):
    """Convert the Paddle program in trace_dir (traced for ONNX) to onnx_path with paddle2onnx;
    returns a summary for export.json."""
    try:
        import onnx
        import paddle2onnx
    except ImportError:
        raise ExportError('the ONNX export needs paddle2onnx and onnx (pip install -r '
                          'requirements.txt)') from None
    from utils.library_logging import quiet_paddle2onnx
    with quiet_paddle2onnx():
        paddle2onnx.export(os.path.join(trace_dir, PROGRAM_FILE), os.path.join(trace_dir, PARAMS_FILE),
                           onnx_path, opset_version=opset, enable_onnx_checker=True)
    if not os.path.isfile(onnx_path):
        raise ExportError('paddle2onnx did not write model.onnx')
    # paddle2onnx 2.1 annotates some intermediate tensors with wrong static shapes (e.g. a
    # dimension 1 where the concat makes 3), which onnxruntime rejects; the annotations are
    # optional, so drop them and let the runtime infer shapes itself.
    model = onnx.load(onnx_path)
    del model.graph.value_info[:]
    onnx.save(model, onnx_path)
    return {'file': os.path.basename(onnx_path), 'opset': opset,
            'paddle2onnx': getattr(paddle2onnx, '__version__', '?')}


def check_export(model_dir, weights, size=(256, 384), seed=0, device='cpu'):
    """{engine: {output: max abs difference from the dygraph model}} for every engine that can
    run the export (Paddle Inference for 'paddle'; ONNX Runtime and OpenVINO, when installed,
    for 'onnx'), on a random input of `size`."""
    import numpy as np
    from utils.deploy.engine import DygraphEngine, export_engines
    from model.weights import build_model
    metadata = load_metadata(model_dir, None)
    options = dict(metadata['options'])
    backbone = options.pop('backbone')
    rng = np.random.default_rng(seed)
    src = rng.random((1, 3) + tuple(size), dtype=np.float32)
    bgr = np.clip(src + rng.normal(0, 0.1, src.shape).astype(np.float32), 0, 1)
    eager = DygraphEngine(build_model(weights, model_type='refine', backbone=backbone, **options),
                          device=device)(src, bgr)
    diffs = {}
    for name, engine in export_engines(model_dir, device=device):
        out = engine(src, bgr)
        diffs[name] = {k: float(np.abs(out[k] - eager[k]).max()) for k in OUTPUT_NAMES}
    return diffs


def main(argv=None):
    from utils.deploy.engine import DEVICES, set_device
    parser = argparse.ArgumentParser(
        description='Export BackgroundMattingV2 (MattingRefine) weights to a Paddle Inference '
                    'model (model.json + model.pdiparams + export.json) for predict.py '
                    '--inference-model and the benchmark.')
    parser.add_argument('weights', help='.pdparams or official .pth MattingRefine weights')
    parser.add_argument('out_dir', help='output folder (replaced if it holds an older export)')
    parser.add_argument('--backbone', choices=BACKBONES,
                        help='check that the weights are of this backbone')
    parser.add_argument('--backbone-scale', type=float, default=MODEL_DEFAULTS['backbone_scale'])
    parser.add_argument('--refine-mode', choices=REFINE_MODES,
                        default=MODEL_DEFAULTS['refine_mode'])
    parser.add_argument('--refine-sample-pixels', type=int, default=MODEL_DEFAULTS['refine_sample_pixels'])
    parser.add_argument('--refine-threshold', type=float, default=MODEL_DEFAULTS['refine_threshold'])
    parser.add_argument('--refine-kernel-size', type=int, choices=REFINE_KERNEL_SIZES,
                        help="default: the weights' own")
    parser.add_argument('--refine-prevent-oversampling', action=argparse.BooleanOptionalAction,
                        default=MODEL_DEFAULTS['refine_prevent_oversampling'])
    parser.add_argument('--formats', nargs='+', choices=FORMATS, default=['paddle'],
                        help='paddle: model.json + model.pdiparams for Paddle Inference; onnx: '
                             'model.onnx for ONNX Runtime and OpenVINO (default: paddle)')
    parser.add_argument('--onnx', action='store_true', help='also write model.onnx (--formats paddle onnx)')
    parser.add_argument('--check', action='store_true',
                        help='run each exported model and the dygraph model on a random 256x384 '
                             'input and print the largest differences')
    parser.add_argument('--device', choices=DEVICES, default='cpu',
                        help='device to trace on and to run --check on (the export itself runs '
                             'on either)')
    args = parser.parse_args(argv)
    try:
        set_device(args.device)
        formats = set(args.formats) | ({'onnx'} if args.onnx else set())
        metadata = export_model(args.weights, args.out_dir, backbone=args.backbone, formats=formats,
                                backbone_scale=args.backbone_scale, refine_mode=args.refine_mode,
                                refine_sample_pixels=args.refine_sample_pixels,
                                refine_threshold=args.refine_threshold,
                                refine_kernel_size=args.refine_kernel_size,
                                refine_prevent_oversampling=args.refine_prevent_oversampling)
    except (ExportError, CheckpointError, RuntimeError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    options = ', '.join(f'{k}={v}' for k, v in metadata['options'].items())
    print(f'Exported {args.weights} -> {args.out_dir} ({options}) in {metadata["export_seconds"]} s')
    if 'onnx' in metadata['formats']:
        print(f'ONNX: {os.path.join(args.out_dir, ONNX_FILE)}')
    if args.check:
        for engine, diffs in check_export(args.out_dir, args.weights, device=args.device).items():
            print(f'max |{engine} - dygraph|: ' + ', '.join(f'{k} {v:.2e}' for k, v in diffs.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
