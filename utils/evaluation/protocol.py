"""The paper's evaluation protocol: fixed composites, model inference, scoring and reports.

eval.py only parses arguments and calls `evaluate_model` or `evaluate_predictions`.

Ground truth comes from one of two layouts:

* PhotoMatte85 (`photomatte85_samples`): one folder of RGBA PNGs, ``<name>.png``; the
  colour channels are the foreground, the alpha channel the matte.
* pha/fgr folders (`folder_samples`, used for AIM, Distinctions, ...): ``<dir>/pha/<name>``
  (gray matte) and ``<dir>/fgr/<name>`` (RGB foreground), matched by file name stem.

Composites (`utils.evaluation.composites`): the test foregrounds on backgrounds, with the
flawed plate the network is given.

Scoring: each image is scored by `utils.evaluation.metrics.compute_all` (8-bit maps, crop to
multiples of 4, unknown region = trimap 128 with trimaps from `utils.evaluation.trimap.make_trimap`);
the summary is the mean over images, like the MATLAB ``benchmark.m``.
"""
import os
from dataclasses import asdict, dataclass

from tqdm import tqdm

from model.options import REFINE_DEFAULTS
from utils.evaluation.composites import CompositeConfig, prepare_composites, read_manifest
from utils.evaluation.metrics import METRIC_NAMES, PAPER_PHOTOMATTE85_RESNET50, compute_all
from utils.evaluation.report import format_table, summarize, write_reports
from utils.evaluation.samples import EvaluationError, images_by_stem, match_names
from utils.evaluation.trimap import make_trimap
from utils.image_io import read_image, to_uint8, write_image

# ---------------------------------------------------------------------------- model


# Pixels refined in sampling mode: 20,000 4x4 patches, the paper's photo setting.
PHOTO_SAMPLE_PIXELS = 320_000


@dataclass
class ModelConfig:
    """How the network is built for evaluation (the paper's photo setting by default)."""
    weights: str
    model_type: str = None  # one of model.options.MODEL_TYPES; None: whatever the weights hold
    backbone_scale: float = REFINE_DEFAULTS.backbone_scale
    refine_mode: str = REFINE_DEFAULTS.refine_mode
    refine_sample_pixels: int = PHOTO_SAMPLE_PIXELS
    refine_threshold: float = REFINE_DEFAULTS.refine_threshold
    engine: str = 'dygraph'  # one of utils.deploy.engine.ENGINES
    device: str = None  # 'cpu' or 'gpu'; None: Paddle's default device


def load_engine(config):
    """The inference engine (utils.deploy.engine) for `config`: the dygraph model, or an
    exported graph (engine 'auto' is what predict.py runs on the CPU)."""
    if not config.weights:
        raise EvaluationError('no weights given: pass --weights (.pdparams or official .pth), '
                              'or --pred-dir to score existing predictions')
    if not os.path.isfile(config.weights):
        raise EvaluationError(f'weights file {config.weights!r} does not exist')
    from utils.deploy.engine import create_engine, default_device  # imports paddle; only needed here
    # The refine options are used only for a MattingRefine.
    options = {'backbone_scale': config.backbone_scale, 'refine_mode': config.refine_mode,
               'refine_sample_pixels': config.refine_sample_pixels,
               'refine_threshold': config.refine_threshold}
    try:
        return create_engine(config.weights, engine=config.engine, device=config.device or default_device(),
                             model_type=config.model_type, **options)
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise EvaluationError(f'could not load {config.weights!r}: {exc}') from exc


def run_model(engine, src, bgr):
    """Run the network on one (H, W, 3) float image pair (H, W multiples of 4).

    Returns (pha (H, W), fgr (H, W, 3)) as float32 in [0, 1].
    """
    out = engine(src.transpose(2, 0, 1)[None], bgr.transpose(2, 0, 1)[None])
    return out['pha'][0, 0], out['fgr'][0].transpose(1, 2, 0)


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
                   trimap_dir=None, limit=None, progress=True, verbose=True, engine=None):
    """The full protocol: composites -> network -> 8-bit predictions -> metrics -> reports.

    `engine` (utils.deploy.engine) may be passed in already built; otherwise it is made from
    `model_config`. Returns a dict with 'summary', 'rows', 'csv', 'json', 'table' and
    'bench_dir'.
    """
    composite_config = composite_config or CompositeConfig()
    samples = _limit(samples, limit)
    bench_dir = prepare_composites(samples, bgr_dir, cache_dir, composite_config, dataset, progress)
    manifest = read_manifest(bench_dir)['samples']
    if engine is None:
        engine = load_engine(model_config)
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
        pred_pha, pred_fgr = run_model(engine, src[:h4, :w4], bgr[:h4, :w4])
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
    pred_phas = images_by_stem(os.path.join(pred_dir, 'pha'), 'predicted alpha (pha)')
    fgr_dir = os.path.join(pred_dir, 'fgr')
    pred_fgrs = images_by_stem(fgr_dir, 'predicted foreground (fgr)') if os.path.isdir(fgr_dir) else None
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
