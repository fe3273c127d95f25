"""The paper's evaluation protocol: fixed composites, model inference, scoring and reports.

eval.py only parses arguments and calls `evaluate_model` or `evaluate_predictions`.

Ground truth comes from one of two layouts:

* PhotoMatte85 (`photomatte85_samples`): one folder of RGBA PNGs, ``<name>.png``; the
  colour channels are the foreground, the alpha channel the matte.
* pha/fgr folders (`folder_samples`, used for AIM, Distinctions, ...): ``<dir>/pha/<name>``
  (gray matte) and ``<dir>/fgr/<name>`` (RGB foreground), matched by file name stem.

Composites (`prepare_composites`). The paper composites each test foreground onto a
background and gives the network a *flawed* background plate, to imitate a real capture:
slight misalignment, a colour change and sensor noise. Exactly what is done here, per
sample, with a random stream seeded by (seed, CRC-32 of the sample name):

1. a background is picked uniformly from the sorted background folder, scaled (aspect
   kept) to cover the foreground and centre-cropped to its size;
2. src = fgr * alpha + background * (1 - alpha), from the clean background;
3. the plate given to the model is the same background shifted by (dx, dy) ~ U(-0.3, 0.3)
   px each (bilinear, reflected border), raised to a gamma ~ U(0.85, 1.15) and given
   Gaussian noise of standard deviation `noise_std` (0.01 by default), then clipped;
4. src, plate, ground-truth alpha / foreground and the trimap are written as 8-bit PNGs to
   ``<cache_dir>/<dataset>-seed<seed>-<key>/{src,bgr,pha,fgr,trimap}/<name>.png``, where
   key hashes every parameter and the input file names and sizes. A finished folder has a
   manifest.json (written last, with each sample's background / shift / gamma) and is
   reused as is by later runs; the model always reads the PNGs back from it, so the first
   run and every later run see the same bytes. The cache folder is itself in pha/fgr
   layout (plus src/ and bgr/), so other implementations can run on it and be scored with
   ``eval.py --pred-dir``.

NumPy's legacy RandomState is used because its streams are frozen across NumPy versions
(Generator's distributions are not); the manifest records the numpy and OpenCV versions,
since resizing/warping could differ across OpenCV releases.

Scoring: each image is scored by `utils.metrics.compute_all` (8-bit maps, crop to
multiples of 4, unknown region = trimap 128 with trimaps from `utils.trimap.make_trimap`);
the summary is the mean over images, like the MATLAB ``benchmark.m``.
"""
import csv
import hashlib
import io
import json
import math
import os
import zlib
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
from tqdm import tqdm

from utils.image_io import (ImageReadError, atomic_write_bytes, is_image_file, read_image,
                            to_uint8, write_image)
from utils.metrics import METRIC_NAMES, PAPER_PHOTOMATTE85_RESNET50, compute_all
from utils.trimap import make_trimap

PROTOCOL_VERSION = 1  # bump when the composite recipe changes, so old caches are not reused


class EvaluationError(Exception):
    """Bad evaluation input (missing folder, unmatched names, size mismatch, ...). The
    message says what is wrong and what to do; eval.py prints it without a traceback."""


# ---------------------------------------------------------------------------- inputs


@dataclass
class Sample:
    """One ground-truth item: a name and how to load its matte and foreground."""
    name: str
    pha_path: str
    fgr_path: str = None  # None: the foreground comes from the RGBA file at pha_path, or there is none
    rgba: bool = False

    def load(self):
        """Return (pha (H, W), fgr (H, W, 3) or None) as float32 in [0, 1]."""
        if self.rgba:
            rgba = read_image(self.pha_path, 'rgba')
            if float(rgba[:, :, 3].min()) == 1.0:
                raise EvaluationError(
                    f'{self.pha_path}: has no transparent pixels; PhotoMatte85 foregrounds must be '
                    f'RGBA PNGs with the matte in the alpha channel')
            return rgba[:, :, 3], np.ascontiguousarray(rgba[:, :, :3])
        pha = read_image(self.pha_path, 'gray')
        fgr = read_image(self.fgr_path, 'rgb') if self.fgr_path else None
        if fgr is not None and fgr.shape[:2] != pha.shape:
            raise EvaluationError(f'{self.fgr_path}: size {fgr.shape[1]}x{fgr.shape[0]} differs from '
                                  f'its matte {self.pha_path} ({pha.shape[1]}x{pha.shape[0]})')
        return pha, fgr


def list_images(folder, what):
    """Map file-name stem -> path for the images directly in `folder`.

    Raises EvaluationError if the folder is missing or has no images, or if two files
    share a stem (e.g. a.png and a.jpg), since names are how files are matched.
    """
    if not os.path.isdir(folder):
        raise EvaluationError(f'{what} folder {folder!r} does not exist')
    found = {}
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if not (os.path.isfile(path) and is_image_file(entry)):
            continue
        stem = os.path.splitext(entry)[0]
        if stem in found:
            raise EvaluationError(f'{what} folder {folder!r} has two images named {stem!r} '
                                  f'({os.path.basename(found[stem])} and {entry}); keep one')
        found[stem] = path
    if not found:
        raise EvaluationError(f'{what} folder {folder!r} contains no images')
    return found


def _unmatched_message(left_name, left, right_name, right, limit=10):
    def show(names):
        names = sorted(names)
        more = f' ... and {len(names) - limit} more' if len(names) > limit else ''
        return ', '.join(names[:limit]) + more
    parts = []
    if left - right:
        parts.append(f'in {left_name} but not in {right_name}: {show(left - right)}')
    if right - left:
        parts.append(f'in {right_name} but not in {left_name}: {show(right - left)}')
    return '; '.join(parts)


def match_names(left_name, left, right_name, right):
    """Raise EvaluationError listing the names that are in only one of two name sets."""
    left, right = set(left), set(right)
    if left != right:
        raise EvaluationError('file names do not match: ' +
                              _unmatched_message(left_name, left, right_name, right))


def photomatte85_samples(data_dir):
    """Samples of a PhotoMatte85-layout folder: RGBA PNGs, alpha channel = matte."""
    return [Sample(name, path, rgba=True)
            for name, path in list_images(data_dir, 'PhotoMatte85 (RGBA foregrounds)').items()]


def folder_samples(gt_dir, require_fgr=False):
    """Samples of a pha/fgr-layout folder (``gt_dir/pha``, ``gt_dir/fgr``).

    The fgr folder is optional unless `require_fgr` (compositing needs foregrounds); without
    it FG-MSE is not computed.
    """
    if not os.path.isdir(gt_dir):
        raise EvaluationError(f'ground-truth folder {gt_dir!r} does not exist')
    phas = list_images(os.path.join(gt_dir, 'pha'), 'ground-truth alpha (pha)')
    fgr_dir = os.path.join(gt_dir, 'fgr')
    if not os.path.isdir(fgr_dir):
        if require_fgr:
            raise EvaluationError(f'{fgr_dir!r} does not exist: compositing needs the true foregrounds')
        return [Sample(name, path) for name, path in phas.items()]
    fgrs = list_images(fgr_dir, 'ground-truth foreground (fgr)')
    match_names(os.path.join(gt_dir, 'pha'), phas, fgr_dir, fgrs)
    return [Sample(name, path, fgrs[name]) for name, path in phas.items()]


# ------------------------------------------------------------------------ composites


@dataclass
class CompositeConfig:
    """Parameters of the composite protocol (see the module docstring)."""
    seed: int = 0
    max_shift: float = 0.3  # pixels, each axis
    gamma_range: tuple = (0.85, 1.15)
    noise_std: float = 0.01
    trimap: dict = field(default_factory=lambda: {'low': 0.06, 'high': 0.96, 'iterations': 10,
                                                  'kernel_size': 3})

    def validate(self):
        if not 0 <= self.max_shift <= 5:
            raise EvaluationError(f'shift must be in [0, 5] pixels, got {self.max_shift}')
        lo, hi = self.gamma_range
        if not 0 < lo <= hi:
            raise EvaluationError(f'gamma range must satisfy 0 < min <= max, got {self.gamma_range}')
        if self.noise_std < 0:
            raise EvaluationError(f'noise std must be >= 0, got {self.noise_std}')
        if not 0 <= self.seed < 2 ** 32:
            raise EvaluationError(f'seed must be in [0, 2^32), got {self.seed}')


def sample_rng(seed, name):
    """The random stream of one sample: depends only on the seed and the sample's name,
    so adding or removing other images does not change it."""
    return np.random.RandomState([seed, zlib.crc32(name.encode('utf-8'))])


def fit_background(bgr, height, width):
    """Scale `bgr` (aspect kept) to cover height x width and centre-crop to exactly that size."""
    h, w = bgr.shape[:2]
    scale = max(height / h, width / w)
    new_h, new_w = max(height, math.ceil(h * scale - 1e-9)), max(width, math.ceil(w * scale - 1e-9))
    if (new_h, new_w) != (h, w):
        # INTER_AREA averages when shrinking (no aliasing); bilinear when enlarging.
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        bgr = cv2.resize(bgr, (new_w, new_h), interpolation=interp)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(bgr[top:top + height, left:left + width])


def perturb_background(bgr, dx, dy, gamma, noise):
    """The flawed background plate: sub-pixel shift, gamma, additive noise, clipped to [0, 1]."""
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    shifted = cv2.warpAffine(bgr, matrix, (bgr.shape[1], bgr.shape[0]), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT_101)
    shifted = np.clip(shifted, 0.0, 1.0) ** gamma
    return np.clip(shifted + noise, 0.0, 1.0).astype(np.float32)


def _file_signature(paths):
    return [[os.path.basename(p), os.path.getsize(p)] for p in paths]


def cache_key(dataset, samples, bgr_paths, config):
    """Hash of everything the composites depend on (parameters, input names and sizes)."""
    blob = json.dumps({
        'version': PROTOCOL_VERSION, 'dataset': dataset, 'config': asdict(config),
        'samples': [[s.name] + _file_signature([p for p in (s.pha_path, s.fgr_path) if p])
                    for s in samples],
        'backgrounds': _file_signature(bgr_paths),
    }, sort_keys=True)
    return hashlib.sha256(blob.encode('utf-8')).hexdigest()[:12]


def _write_json(path, obj):
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + '\n').encode('utf-8'))


def prepare_composites(samples, bgr_dir, cache_dir, config, dataset='photomatte85', progress=True):
    """Make (or reuse) the fixed composites of `samples`; return the benchmark folder path.

    See the module docstring for the recipe and the folder layout.
    """
    config.validate()
    bgr_paths = list(list_images(bgr_dir, 'background').values())
    key = cache_key(dataset, samples, bgr_paths, config)
    bench_dir = os.path.join(cache_dir, f'{dataset}-seed{config.seed}-{key}')
    manifest_path = os.path.join(bench_dir, 'manifest.json')
    if os.path.isfile(manifest_path):
        with open(manifest_path, encoding='utf-8') as f:
            manifest = json.load(f)
        if manifest.get('key') == key and all(
                os.path.isfile(os.path.join(bench_dir, sub, s.name + '.png'))
                for s in samples for sub in ('src', 'bgr', 'pha', 'fgr', 'trimap')):
            return bench_dir

    records = {}
    for sample in tqdm(samples, desc='composites', unit='img', disable=not progress):
        pha, fgr = sample.load()
        if fgr is None:
            raise EvaluationError(f'{sample.name}: no foreground image; compositing needs one')
        pha = to_uint8(pha).astype(np.float32) / 255.0  # the protocol's ground truth is 8-bit
        fgr = to_uint8(fgr).astype(np.float32) / 255.0
        height, width = pha.shape
        if height < 4 or width < 4:
            raise EvaluationError(f'{sample.pha_path}: {width}x{height} is too small (at least 4x4)')
        rng = sample_rng(config.seed, sample.name)
        bgr_index = int(rng.randint(len(bgr_paths)))
        dx, dy = (float(v) for v in rng.uniform(-config.max_shift, config.max_shift, size=2))
        gamma = float(rng.uniform(*config.gamma_range))
        noise = rng.normal(0.0, config.noise_std, size=(height, width, 3)) if config.noise_std else 0.0
        bgr = fit_background(read_image(bgr_paths[bgr_index], 'rgb'), height, width)
        src = fgr * pha[:, :, None] + bgr * (1.0 - pha[:, :, None])
        plate = perturb_background(bgr, dx, dy, gamma, noise)
        for sub, img in (('src', src), ('bgr', plate), ('pha', pha), ('fgr', fgr),
                         ('trimap', make_trimap(pha, **config.trimap))):
            write_image(os.path.join(bench_dir, sub, sample.name + '.png'), img)
        records[sample.name] = {'source': os.path.basename(sample.pha_path),
                                'background': os.path.basename(bgr_paths[bgr_index]),
                                'shift_x': dx, 'shift_y': dy, 'gamma': gamma}
    _write_json(manifest_path, {
        'key': key, 'protocol_version': PROTOCOL_VERSION, 'dataset': dataset,
        'config': asdict(config), 'numpy': np.__version__, 'opencv': cv2.__version__,
        'samples': records,
    })
    return bench_dir


def read_manifest(bench_dir):
    """The per-sample composite parameters recorded by `prepare_composites`."""
    with open(os.path.join(bench_dir, 'manifest.json'), encoding='utf-8') as f:
        return json.load(f)


# ---------------------------------------------------------------------------- model


@dataclass
class ModelConfig:
    """How the network is built for evaluation (the paper's photo setting by default)."""
    weights: str
    model_type: str = None  # 'refine' or 'base'; None: whatever the weights hold
    backbone_scale: float = 0.25
    refine_mode: str = 'sampling'
    refine_sample_pixels: int = 320_000  # 20,000 4x4 patches, the paper's photo setting
    refine_threshold: float = 0.1
    device: str = 'cpu'  # one of utils.engine.DEVICES


def load_model(config):
    """Build the network from .pdparams or official .pth weights (`utils.convert_weights.build_model`)."""
    if not config.weights:
        raise EvaluationError('no weights given: pass --weights (.pdparams or official .pth), '
                              'or --pred-dir to score existing predictions')
    if not os.path.isfile(config.weights):
        raise EvaluationError(f'weights file {config.weights!r} does not exist')
    from utils.convert_weights import build_model  # imports paddle; only needed here
    from utils.engine import set_device
    try:
        set_device(config.device)
    except RuntimeError as exc:  # a GPU asked of a CPU-only Paddle
        raise EvaluationError(str(exc)) from None
    # build_model uses the refine options only when it builds a MattingRefine.
    options = {'backbone_scale': config.backbone_scale, 'refine_mode': config.refine_mode,
               'refine_sample_pixels': config.refine_sample_pixels,
               'refine_threshold': config.refine_threshold}
    try:
        return build_model(config.weights, model_type=config.model_type, **options)
    except (ValueError, KeyError, OSError) as exc:
        raise EvaluationError(f'could not load {config.weights!r}: {exc}') from exc


def run_model(model, src, bgr):
    """Run the network on one (H, W, 3) float image pair (H, W multiples of 4).

    Returns (pha (H, W), fgr (H, W, 3)) as float32 in [0, 1].
    """
    import paddle  # deferred so scoring predictions never needs paddle

    def to_tensor(img):
        return paddle.to_tensor(np.ascontiguousarray(img.transpose(2, 0, 1)[None]), dtype='float32')

    with paddle.no_grad():
        outputs = model(to_tensor(src), to_tensor(bgr))
    pha = outputs[0].numpy()[0, 0]
    fgr = outputs[1].numpy()[0].transpose(1, 2, 0)
    return pha, fgr


# -------------------------------------------------------------------------- scoring


def score_sample(name, pred_pha, pred_fgr, true_pha, true_fgr, trimap):
    """compute_all for one image, after checking that prediction and ground truth fit.

    A prediction may have the ground truth's size or its size cropped to multiples of 4
    (what a network needing sizes divisible by 4 returns); anything else is an error.
    """
    height, width = true_pha.shape
    allowed = {(height, width), (height // 4 * 4, width // 4 * 4)}
    for what, img in (('alpha', pred_pha), ('foreground', pred_fgr)):
        if img is not None and img.shape[:2] not in allowed:
            raise EvaluationError(
                f'{name}: predicted {what} is {img.shape[1]}x{img.shape[0]} but the ground truth is '
                f'{width}x{height} (a prediction may only be cropped to multiples of 4, '
                f'{width // 4 * 4}x{height // 4 * 4})')
    if trimap.shape != true_pha.shape:
        raise EvaluationError(f'{name}: trimap is {trimap.shape[1]}x{trimap.shape[0]} but the ground '
                              f'truth is {width}x{height}')
    h4, w4 = height // 4 * 4, width // 4 * 4
    crop = (lambda img: None if img is None else img[:h4, :w4])
    return compute_all(crop(pred_pha), crop(true_pha), crop(trimap),
                       crop(pred_fgr) if true_fgr is not None else None, crop(true_fgr))


def _trimap_for(sample_name, true_pha, trimap_dir, trimap_options):
    if trimap_dir is None:
        return make_trimap(true_pha, **trimap_options)
    path = os.path.join(trimap_dir, sample_name + '.png')
    if not os.path.isfile(path):
        raise EvaluationError(f'{sample_name}: no trimap {path!r} in --trimap-dir')
    return to_uint8(read_image(path, 'gray'))


def summarize(rows):
    """Mean of each metric over the per-image rows (FG-MSE over the images that have it)."""
    summary = {}
    for metric in METRIC_NAMES:
        values = [row[metric] for row in rows if not math.isnan(row[metric])]
        summary[metric] = float(np.mean(values)) if values else None
    return summary


def format_table(title, summary, count, reference=None):
    """The printed result table (MSE and FG-MSE in units of 1e-3, as in the paper)."""
    formats = {'SAD': '{:.2f}', 'MSE': '{:.2f}', 'Grad': '{:.0f}', 'Conn': '{:.0f}', 'FG-MSE': '{:.2f}'}
    headers = ['SAD', 'MSE(1e-3)', 'Grad', 'Conn', 'FG-MSE(1e-3)']
    label_width = max(len(title), 34)
    lines = [f'{title:<{label_width}}' + ''.join(f'{h:>14}' for h in headers)]

    def row(label, values):
        cells = [('-' if values.get(m) is None else formats[m].format(values[m])) for m in METRIC_NAMES]
        return f'{label:<{label_width}}' + ''.join(f'{c:>14}' for c in cells)

    lines.append(row(f'this run ({count} images)', summary))
    if reference is not None:
        lines.append(row('paper: MattingRefine ResNet-50', reference))
    return '\n'.join(lines)


def write_reports(rows, summary_record, log_dir, run_name):
    """Write ``<log_dir>/<run_name>.csv`` (one row per image) and ``<run_name>.json``
    (summary) atomically; return their paths."""
    columns = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ('' if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    csv_path = os.path.join(log_dir, run_name + '.csv')
    json_path = os.path.join(log_dir, run_name + '.json')
    atomic_write_bytes(csv_path, buffer.getvalue().encode('utf-8'))
    _write_json(json_path, dict(summary_record, per_image_csv=csv_path))
    return csv_path, json_path


def _finish(rows, record, dataset, log_dir, run_name, verbose):
    summary = summarize(rows)
    record = dict(record, num_images=len(rows), metrics=summary,
                  units={'SAD': 'sum |error| / 1000', 'MSE': 'x1e-3', 'Grad': 'raw', 'Conn': 'raw',
                         'FG-MSE': 'x1e-3'})
    reference = PAPER_PHOTOMATTE85_RESNET50 if dataset == 'photomatte85' else None
    if reference is not None:
        record['paper_reference_mattingrefine_resnet50'] = reference
    csv_path, json_path = write_reports(rows, record, log_dir, run_name)
    table = format_table(dataset, summary, len(rows), reference)
    if verbose:
        print(table)
        print(f'per-image results: {csv_path}\nsummary: {json_path}')
    return {'summary': summary, 'rows': rows, 'csv': csv_path, 'json': json_path, 'table': table}


def _limit(samples, limit):
    samples = sorted(samples, key=lambda s: s.name)
    return samples[:limit] if limit else samples


def evaluate_model(samples, bgr_dir, model_config, composite_config=None, dataset='photomatte85',
                   cache_dir='log/eval_cache', log_dir='log', run_name=None, save_pred_dir=None,
                   trimap_dir=None, limit=None, progress=True, verbose=True, model=None):
    """The full protocol: composites -> network -> 8-bit predictions -> metrics -> reports.

    `model` may be passed in already built (tests); otherwise it is built from
    `model_config`. Returns a dict with 'summary', 'rows', 'csv', 'json', 'table' and
    'bench_dir'.
    """
    composite_config = composite_config or CompositeConfig()
    samples = _limit(samples, limit)
    bench_dir = prepare_composites(samples, bgr_dir, cache_dir, composite_config, dataset, progress)
    manifest = read_manifest(bench_dir)['samples']
    if model is None:
        model = load_model(model_config)
    rows = []
    for sample in tqdm(samples, desc='evaluate', unit='img', disable=not progress):
        name = sample.name
        # Read everything back from the cache so every run sees identical inputs.
        src = read_image(os.path.join(bench_dir, 'src', name + '.png'), 'rgb')
        bgr = read_image(os.path.join(bench_dir, 'bgr', name + '.png'), 'rgb')
        true_pha = read_image(os.path.join(bench_dir, 'pha', name + '.png'), 'gray')
        true_fgr = read_image(os.path.join(bench_dir, 'fgr', name + '.png'), 'rgb')
        height, width = true_pha.shape
        h4, w4 = height // 4 * 4, width // 4 * 4  # the network needs multiples of 4; so does scoring
        pred_pha, pred_fgr = run_model(model, src[:h4, :w4], bgr[:h4, :w4])
        pred_pha, pred_fgr = to_uint8(pred_pha), to_uint8(pred_fgr)  # scored as 8-bit PNGs would be
        if save_pred_dir:
            write_image(os.path.join(save_pred_dir, 'pha', name + '.png'), pred_pha)
            write_image(os.path.join(save_pred_dir, 'fgr', name + '.png'), pred_fgr)
        trimap = _trimap_for(name, true_pha, trimap_dir, composite_config.trimap)
        metrics = score_sample(name, pred_pha, pred_fgr, to_uint8(true_pha), to_uint8(true_fgr), trimap)
        rows.append(dict(name=name, **{m: metrics[m] for m in METRIC_NAMES},
                         unknown_pixels=metrics['unknown_pixels'], height=h4, width=w4,
                         **{k: manifest[name][k] for k in ('background', 'shift_x', 'shift_y', 'gamma')}))
    record = {'mode': 'model', 'dataset': dataset, 'composites': bench_dir,
              'protocol': asdict(composite_config), 'model': asdict(model_config),
              'trimap_dir': trimap_dir, 'saved_predictions': save_pred_dir}
    if run_name is None:
        stem = os.path.splitext(os.path.basename(model_config.weights or 'model'))[0]
        run_name = f'eval-{dataset}-{stem}'
    result = _finish(rows, record, dataset, log_dir, run_name, verbose)
    result['bench_dir'] = bench_dir
    return result


def evaluate_predictions(samples, pred_dir, dataset='folder', trimap_options=None, log_dir='log',
                         run_name=None, trimap_dir=None, limit=None, progress=True, verbose=True):
    """Score a folder of existing predictions (``pred_dir/pha``, optional ``pred_dir/fgr``)
    against `samples`, with the same code as the model path.

    Every ground-truth name needs a prediction and vice versa (matched by file stem).
    FG-MSE is computed when both the predicted and the true foregrounds exist.
    """
    trimap_options = trimap_options or CompositeConfig().trimap
    samples = _limit(samples, limit)
    if not os.path.isdir(pred_dir):
        raise EvaluationError(f'prediction folder {pred_dir!r} does not exist')
    pred_phas = list_images(os.path.join(pred_dir, 'pha'), 'predicted alpha (pha)')
    fgr_dir = os.path.join(pred_dir, 'fgr')
    pred_fgrs = list_images(fgr_dir, 'predicted foreground (fgr)') if os.path.isdir(fgr_dir) else None
    names = {s.name for s in samples}
    if limit:  # with --limit, only the chosen ground-truth names must have predictions
        pred_phas = {k: v for k, v in pred_phas.items() if k in names}
        pred_fgrs = pred_fgrs and {k: v for k, v in pred_fgrs.items() if k in names}
    match_names('ground truth', names, os.path.join(pred_dir, 'pha'), pred_phas)
    if pred_fgrs is not None:
        match_names('ground truth', names, fgr_dir, pred_fgrs)
    rows = []
    for sample in tqdm(samples, desc='score', unit='img', disable=not progress):
        true_pha, true_fgr = sample.load()
        true_pha = to_uint8(true_pha)
        true_fgr = None if true_fgr is None else to_uint8(true_fgr)
        pred_pha = to_uint8(read_image(pred_phas[sample.name], 'gray'))
        pred_fgr = None if pred_fgrs is None else to_uint8(read_image(pred_fgrs[sample.name], 'rgb'))
        trimap = _trimap_for(sample.name, true_pha, trimap_dir, trimap_options)
        metrics = score_sample(sample.name, pred_pha, pred_fgr, true_pha, true_fgr, trimap)
        height, width = true_pha.shape
        rows.append(dict(name=sample.name, **{m: metrics[m] for m in METRIC_NAMES},
                         unknown_pixels=metrics['unknown_pixels'],
                         height=height // 4 * 4, width=width // 4 * 4))
    record = {'mode': 'predictions', 'dataset': dataset, 'pred_dir': pred_dir,
              'trimap': trimap_options, 'trimap_dir': trimap_dir}
    if run_name is None:
        run_name = f'eval-{dataset}-{os.path.basename(os.path.normpath(pred_dir))}'
    return _finish(rows, record, dataset, log_dir, run_name, verbose)


__all__ = ['EvaluationError', 'Sample', 'CompositeConfig', 'ModelConfig', 'ImageReadError',
           'photomatte85_samples', 'folder_samples', 'prepare_composites', 'read_manifest',
           'load_model', 'run_model', 'score_sample', 'summarize', 'format_table',
           'write_reports', 'evaluate_model', 'evaluate_predictions', 'list_images', 'match_names',
           'fit_background', 'perturb_background', 'sample_rng', 'cache_key']
