"""Tests of the evaluation protocol (utils/evaluation/) and eval.py on a tiny dataset in
the PhotoMatte85 layout (RGBA PNG foregrounds + a background folder) made by the tests."""
import csv
import json
import os
import shutil

import cv2
import numpy as np
import pytest

import eval as eval_script
from utils import evaluation as E
from utils.image_io import read_image, to_uint8, write_image
from utils.evaluation.metrics import METRIC_NAMES
from utils.evaluation.trimap import make_trimap

HEIGHT, WIDTH = 66, 98  # not multiples of 4, so the crop is exercised


def make_foreground(rng, height=HEIGHT, width=WIDTH):
    """An RGBA person-like blob: opaque body, soft blurred edge, random colours."""
    mask = np.zeros((height, width), np.float32)
    cv2.ellipse(mask, (int(width * rng.uniform(0.4, 0.6)), height // 2),
                (width // 4, height // 3), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(mask, (0, 0), rng.uniform(1.5, 3.0))
    rgb = rng.rand(height, width, 3).astype(np.float32) * 0.6 + 0.2
    return np.dstack([rgb, alpha])


@pytest.fixture
def dataset(tmp_path):
    """tmp/PhotoMatte85/{a,b,c}.png (RGBA) and tmp/backgrounds/{x.jpg 40x60, y.png 120x160}."""
    rng = np.random.RandomState(0)
    fgr_dir, bgr_dir = tmp_path / 'PhotoMatte85', tmp_path / 'backgrounds'
    for name in ('a', 'b', 'c'):
        write_image(str(fgr_dir / f'{name}.png'), make_foreground(rng))
    write_image(str(bgr_dir / 'x.jpg'), rng.rand(40, 60, 3))
    yy, xx = np.mgrid[:120, :160] / 160.0
    write_image(str(bgr_dir / 'y.png'), np.dstack([yy, xx, 0.5 * (xx + yy)]))
    return {'root': tmp_path, 'fgr': str(fgr_dir), 'bgr': str(bgr_dir)}


def config(**kwargs):
    return E.CompositeConfig(**kwargs)


def bench_files(bench_dir):
    out = {}
    for sub in ('src', 'bgr', 'pha', 'fgr', 'trimap'):
        for name in sorted(os.listdir(os.path.join(bench_dir, sub))):
            with open(os.path.join(bench_dir, sub, name), 'rb') as f:
                out[f'{sub}/{name}'] = f.read()
    return out


def write_gt_as_predictions(samples, pred_dir):
    for sample in samples:
        pha, fgr = sample.load()
        write_image(os.path.join(pred_dir, 'pha', sample.name + '.png'), pha)
        write_image(os.path.join(pred_dir, 'fgr', sample.name + '.png'), fgr)


# ----------------------------------------------------------------------- composites


def test_composites_are_identical_on_every_run(dataset, tmp_path):
    samples = E.photomatte85_samples(dataset['fgr'])
    first = E.prepare_composites(samples, dataset['bgr'], str(tmp_path / 'cache1'), config(), progress=False)
    second = E.prepare_composites(samples, dataset['bgr'], str(tmp_path / 'cache2'), config(), progress=False)
    assert os.path.basename(first) == os.path.basename(second)  # same key
    assert bench_files(first) == bench_files(second)
    assert len(bench_files(first)) == 5 * 3
    # A finished cache is reused untouched.
    stamp = os.path.getmtime(os.path.join(first, 'src', 'a.png'))
    assert E.prepare_composites(samples, dataset['bgr'], str(tmp_path / 'cache1'), config(),
                                progress=False) == first
    assert os.path.getmtime(os.path.join(first, 'src', 'a.png')) == stamp
    # Another seed is another composite set.
    other = E.prepare_composites(samples, dataset['bgr'], str(tmp_path / 'cache1'), config(seed=1),
                                 progress=False)
    assert other != first
    assert bench_files(other)['bgr/a.png'] != bench_files(first)['bgr/a.png']


def test_composite_recipe(dataset, tmp_path):
    samples = E.photomatte85_samples(dataset['fgr'])
    bench = E.prepare_composites(samples, dataset['bgr'], str(tmp_path / 'cache'), config(), progress=False)
    manifest = E.read_manifest(bench)
    assert manifest['config']['noise_std'] == 0.01
    for sample in samples:
        record = manifest['samples'][sample.name]
        assert abs(record['shift_x']) <= 0.3 and abs(record['shift_y']) <= 0.3
        assert 0.85 <= record['gamma'] <= 1.15
        assert record['background'] in ('x.jpg', 'y.png')
        pha, fgr = sample.load()
        clean = E.fit_background(read_image(os.path.join(dataset['bgr'], record['background'])),
                                 HEIGHT, WIDTH)
        src = read_image(os.path.join(bench, 'src', sample.name + '.png'))
        plate = read_image(os.path.join(bench, 'bgr', sample.name + '.png'))
        # src is composited on the clean background (8-bit rounding only)...
        expected = fgr * pha[:, :, None] + clean * (1 - pha[:, :, None])
        assert np.abs(src - expected).max() <= 1.01 / 255
        # ...the plate is the perturbed one: close to the clean background but not equal.
        assert 0 < np.abs(plate - clean).mean() < 0.1
        np.testing.assert_array_equal(to_uint8(read_image(os.path.join(bench, 'trimap', sample.name + '.png'),
                                                          'gray')), make_trimap(pha))
    # Turning the perturbations off gives the clean background back.
    flat = E.prepare_composites(samples, dataset['bgr'], str(tmp_path / 'cache'),
                                config(max_shift=0, gamma_range=(1, 1), noise_std=0), progress=False)
    record = E.read_manifest(flat)['samples']['a']
    clean = E.fit_background(read_image(os.path.join(dataset['bgr'], record['background'])), HEIGHT, WIDTH)
    np.testing.assert_array_equal(read_image(os.path.join(flat, 'bgr', 'a.png')), to_uint8(clean) / np.float32(255))


def test_each_sample_depends_only_on_seed_and_name(dataset, tmp_path):
    samples = E.photomatte85_samples(dataset['fgr'])
    full = E.prepare_composites(samples, dataset['bgr'], str(tmp_path / 'c1'), config(), progress=False)
    part = E.prepare_composites(samples[1:], dataset['bgr'], str(tmp_path / 'c2'), config(), progress=False)
    for sub in ('src', 'bgr'):
        assert bench_files(full)[f'{sub}/b.png'] == bench_files(part)[f'{sub}/b.png']


def test_fit_background_covers_and_centres():
    bgr = np.zeros((10, 40, 3), np.float32)
    bgr[:, 18:22] = 1.0  # a bright band in the middle
    out = E.fit_background(bgr, 20, 20)  # scale 2 -> 20x80, centre crop keeps the band
    assert out.shape == (20, 20, 3)
    assert out[:, 10].min() > 0.99 and out[:, 0].max() < 0.01


# --------------------------------------------------------------------- predictions


def test_perfect_prediction_scores_zero(dataset, tmp_path):
    samples = E.photomatte85_samples(dataset['fgr'])
    write_gt_as_predictions(samples, str(tmp_path / 'pred'))
    result = E.evaluate_predictions(samples, str(tmp_path / 'pred'), 'photomatte85',
                                    log_dir=str(tmp_path / 'log'), progress=False, verbose=False)
    assert result['summary'] == {m: 0.0 for m in METRIC_NAMES}
    assert [r['name'] for r in result['rows']] == ['a', 'b', 'c']
    assert all(r['unknown_pixels'] > 0 and (r['height'], r['width']) == (64, 96) for r in result['rows'])
    with open(result['csv'], newline='') as f:
        rows = list(csv.DictReader(f))
    assert [r['name'] for r in rows] == ['a', 'b', 'c'] and float(rows[0]['SAD']) == 0
    with open(result['json']) as f:
        summary = json.load(f)
    assert summary['num_images'] == 3 and summary['metrics']['Conn'] == 0
    assert summary['paper_reference_mattingrefine_resnet50']['SAD'] == 8.65


def test_known_perturbation_gives_expected_sad_and_mse(dataset, tmp_path):
    samples = E.photomatte85_samples(dataset['fgr'])
    pred_dir = str(tmp_path / 'pred')
    write_gt_as_predictions(samples, pred_dir)
    expected = {}
    for sample in samples:
        pha, fgr = sample.load()
        pha8 = to_uint8(pha)
        unknown = make_trimap(pha8)[:64, :96] == 128
        # +51 levels (exactly 0.2) at the unknown pixels of the scored area that can take it,
        # and +51 on the red channel of the visible ones.
        chosen = np.zeros_like(pha8, dtype=bool)
        chosen[:64, :96] = unknown & (pha8[:64, :96] <= 204)
        pred = pha8.copy()
        pred[chosen] += 51
        pred[64:, :] = 0  # outside the multiple-of-4 crop: must not count
        write_image(os.path.join(pred_dir, 'pha', sample.name + '.png'), pred)
        fgr8 = to_uint8(fgr)
        visible = chosen & (pha8 > 0) & (fgr8[:, :, 0] <= 204)
        fgr8[:, :, 0][visible] += 51
        write_image(os.path.join(pred_dir, 'fgr', sample.name + '.png'), fgr8)
        n, n_unknown, n_visible = int(chosen.sum()), int(unknown.sum()), int(visible.sum())
        assert n > 50
        expected[sample.name] = (n * 0.2 / 1000, n * 0.04 / n_unknown * 1000,
                                 n_visible * 0.04 / n_unknown / 3 * 1000)
    result = E.evaluate_predictions(samples, pred_dir, 'photomatte85', log_dir=str(tmp_path / 'log'),
                                    progress=False, verbose=False)
    for row in result['rows']:
        sad, mse, fg = expected[row['name']]
        assert row['SAD'] == pytest.approx(sad, rel=1e-12)
        assert row['MSE'] == pytest.approx(mse, rel=1e-12)
        assert row['FG-MSE'] == pytest.approx(fg, rel=1e-12)
        assert row['Grad'] > 0 and row['Conn'] >= 0
    assert result['summary']['SAD'] == pytest.approx(np.mean([v[0] for v in expected.values()]))


def test_predictions_cropped_to_multiples_of_4_are_accepted(dataset, tmp_path):
    samples = E.photomatte85_samples(dataset['fgr'])
    for sample in samples:
        pha, fgr = sample.load()
        write_image(str(tmp_path / 'pred' / 'pha' / f'{sample.name}.png'), pha[:64, :96])
    result = E.evaluate_predictions(samples, str(tmp_path / 'pred'), log_dir=str(tmp_path / 'log'),
                                    progress=False, verbose=False)
    assert result['summary']['SAD'] == 0 and result['summary']['FG-MSE'] is None


def test_folder_layout_ground_truth(dataset, tmp_path):
    samples = E.photomatte85_samples(dataset['fgr'])
    write_gt_as_predictions(samples, str(tmp_path / 'gt'))  # pha/fgr layout
    gt = E.folder_samples(str(tmp_path / 'gt'))
    assert [s.name for s in gt] == ['a', 'b', 'c']
    for a, b in zip(gt, samples):
        np.testing.assert_array_equal(a.load()[0], b.load()[0])


# --------------------------------------------------------------------------- errors


def test_bad_input_gets_clear_errors(dataset, tmp_path):
    with pytest.raises(E.EvaluationError, match='does not exist'):
        E.photomatte85_samples(str(tmp_path / 'nowhere'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(E.EvaluationError, match='contains no images'):
        E.photomatte85_samples(str(tmp_path / 'empty'))
    samples = E.photomatte85_samples(dataset['fgr'])
    with pytest.raises(E.EvaluationError, match='background folder'):
        E.prepare_composites(samples, str(tmp_path / 'nobgr'), str(tmp_path / 'cache'), config())

    pred_dir = tmp_path / 'pred'
    write_gt_as_predictions(samples, str(pred_dir))
    os.remove(pred_dir / 'pha' / 'b.png')
    shutil.copy(pred_dir / 'pha' / 'a.png', pred_dir / 'pha' / 'zzz.png')
    with pytest.raises(E.EvaluationError, match=r'in ground truth but not in .*: b;.*: zzz'):
        E.evaluate_predictions(samples, str(pred_dir), progress=False, verbose=False)

    write_gt_as_predictions(samples, str(pred_dir))
    os.remove(pred_dir / 'pha' / 'zzz.png')
    write_image(str(pred_dir / 'pha' / 'c.png'), np.zeros((60, 90), np.float32))
    with pytest.raises(E.EvaluationError, match=r'c: predicted alpha is 90x60 but the ground truth is 98x66'):
        E.evaluate_predictions(samples, str(pred_dir), log_dir=str(tmp_path / 'log'),
                               progress=False, verbose=False)

    write_image(str(tmp_path / 'opaque' / 'x.png'), np.ones((8, 8, 3), np.float32))
    with pytest.raises(E.EvaluationError, match='no transparent pixels'):
        E.photomatte85_samples(str(tmp_path / 'opaque'))[0].load()


def test_cli_reports_errors_without_traceback(dataset, tmp_path, capsys):
    code = eval_script.main(['--data-dir', str(tmp_path / 'missing'), '--no-progress'])
    assert code == 2
    assert 'error:' in capsys.readouterr().err
    code = eval_script.main(['--data-dir', dataset['fgr'], '--bgr-dir', dataset['bgr'],
                             '--cache-dir', str(tmp_path / 'cache'), '--no-progress'])
    assert code == 2
    assert 'no weights given' in capsys.readouterr().err


def test_cli_scores_prediction_folder(dataset, tmp_path, capsys):
    samples = E.photomatte85_samples(dataset['fgr'])
    write_gt_as_predictions(samples, str(tmp_path / 'pred'))
    code = eval_script.main(['--pred-dir', str(tmp_path / 'pred'), '--data-dir', dataset['fgr'],
                             '--log-dir', str(tmp_path / 'log'), '--run-name', 'perfect', '--no-progress'])
    assert code == 0
    out = capsys.readouterr().out
    assert 'this run (3 images)' in out and 'paper: MattingRefine ResNet-50' in out
    assert os.path.isfile(tmp_path / 'log' / 'perfect.csv')
    assert os.path.isfile(tmp_path / 'log' / 'perfect.json')


# ---------------------------------------------------------------- model end to end


@pytest.fixture
def random_weights(tmp_path):
    paddle = pytest.importorskip('paddle')
    model_module = pytest.importorskip('model')
    paddle.seed(0)
    net = model_module.MattingRefine('mobilenetv2')
    path = str(tmp_path / 'random_mobilenetv2.pdparams')
    paddle.save(net.state_dict(), path)
    return path


def test_eval_scores_the_exported_graph_like_the_dygraph_model(dataset, tmp_path, random_weights):
    """--engine inference runs the graph predict.py runs on the CPU; it scores as dygraph does."""
    common = ['--data-dir', dataset['fgr'], '--bgr-dir', dataset['bgr'], '--weights', random_weights,
              '--cache-dir', str(tmp_path / 'cache'), '--log-dir', str(tmp_path / 'log'), '--no-progress']
    assert eval_script.main(common + ['--run-name', 'dygraph']) == 0
    assert eval_script.main(common + ['--run-name', 'exported', '--engine', 'inference']) == 0
    with open(tmp_path / 'log' / 'dygraph.json') as f1, open(tmp_path / 'log' / 'exported.json') as f2:
        eager, exported = json.load(f1), json.load(f2)
    assert exported['model']['engine'] == 'inference' and eager['model']['engine'] == 'dygraph'
    for metric, value in eager['metrics'].items():
        assert exported['metrics'][metric] == pytest.approx(value, rel=1e-3, abs=1e-3), metric


def test_model_evaluation_end_to_end_is_repeatable(dataset, tmp_path, random_weights, capsys):
    common = ['--data-dir', dataset['fgr'], '--bgr-dir', dataset['bgr'], '--weights', random_weights,
              '--cache-dir', str(tmp_path / 'cache'), '--log-dir', str(tmp_path / 'log'), '--no-progress']
    assert eval_script.main(common + ['--run-name', 'run1', '--save-pred', str(tmp_path / 'pred')]) == 0
    out = capsys.readouterr().out
    assert 'this run (3 images)' in out
    assert eval_script.main(common + ['--run-name', 'run2']) == 0
    with open(tmp_path / 'log' / 'run1.csv') as f1, open(tmp_path / 'log' / 'run2.csv') as f2:
        first, second = f1.read(), f2.read()
    assert first == second  # same composites, same model -> the very same numbers
    rows = list(csv.DictReader(first.splitlines()))
    assert [r['name'] for r in rows] == ['a', 'b', 'c']
    assert all(float(r['SAD']) > 0 and r['background'] in ('x.jpg', 'y.png') for r in rows)
    with open(tmp_path / 'log' / 'run1.json') as f:
        summary = json.load(f)
    assert summary['model']['refine_sample_pixels'] == 320_000
    assert summary['model']['backbone_scale'] == 0.25
    assert summary['protocol']['seed'] == 0

    # The saved predictions, scored by the --pred-dir path against the cached ground truth,
    # give the same numbers as the in-memory scoring.
    bench_dir = summary['composites']
    assert eval_script.main(['--pred-dir', str(tmp_path / 'pred'), '--gt-dir', bench_dir,
                             '--log-dir', str(tmp_path / 'log'), '--run-name', 'rescored',
                             '--no-progress']) == 0
    with open(tmp_path / 'log' / 'rescored.csv') as f:
        rescored = list(csv.DictReader(f))
    for a, b in zip(rows, rescored):
        for metric in METRIC_NAMES:
            assert float(a[metric]) == pytest.approx(float(b[metric]), rel=1e-12)


def test_trimap_dir_overrides_generated_trimaps(dataset, tmp_path):
    samples = E.photomatte85_samples(dataset['fgr'])
    write_gt_as_predictions(samples, str(tmp_path / 'pred'))
    for sample in samples:
        write_image(str(tmp_path / 'trimaps' / f'{sample.name}.png'), np.full((HEIGHT, WIDTH), 128, np.uint8))
    result = E.evaluate_predictions(samples, str(tmp_path / 'pred'), trimap_dir=str(tmp_path / 'trimaps'),
                                    log_dir=str(tmp_path / 'log'), progress=False, verbose=False)
    assert all(r['unknown_pixels'] == 64 * 96 for r in result['rows'])
    os.remove(tmp_path / 'trimaps' / 'c.png')
    with pytest.raises(E.EvaluationError, match='no trimap'):
        E.evaluate_predictions(samples, str(tmp_path / 'pred'), trimap_dir=str(tmp_path / 'trimaps'),
                               log_dir=str(tmp_path / 'log'), progress=False, verbose=False)


def test_folder_layout_datasets_are_composited_like_photomatte85(dataset, tmp_path):
    samples = E.photomatte85_samples(dataset['fgr'])
    write_gt_as_predictions(samples, str(tmp_path / 'gt'))
    folder = E.folder_samples(str(tmp_path / 'gt'), require_fgr=True)
    a = E.prepare_composites(samples, dataset['bgr'], str(tmp_path / 'c1'), config(), progress=False)
    b = E.prepare_composites(folder, dataset['bgr'], str(tmp_path / 'c2'), config(), progress=False)
    # Same names, same 8-bit content, same seed -> the same composites.
    assert bench_files(a) == bench_files(b)
    os.rename(tmp_path / 'gt' / 'fgr', tmp_path / 'gt' / 'nofgr')
    with pytest.raises(E.EvaluationError, match='compositing needs the true foregrounds'):
        E.folder_samples(str(tmp_path / 'gt'), require_fgr=True)


def test_cli_device_option(dataset, tmp_path, random_weights, capsys):
    """--device takes the engine's DEVICES; gpu on a CPU-only Paddle is one clear error."""
    import paddle
    from utils.deploy.engine import DEVICES
    parser = eval_script.build_parser()
    device_action = next(a for a in parser._actions if '--device' in a.option_strings)
    assert tuple(device_action.choices) == DEVICES and device_action.default is None  # Paddle's default
    if paddle.device.is_compiled_with_cuda():
        pytest.skip('this Paddle has CUDA: --device gpu is valid here')
    code = eval_script.main(['--data-dir', dataset['fgr'], '--bgr-dir', dataset['bgr'],
                             '--weights', random_weights, '--device', 'gpu', '--no-progress',
                             '--cache-dir', str(tmp_path / 'cache'), '--log-dir', str(tmp_path / 'log')])
    err = capsys.readouterr().err
    assert code == 2 and err.count('\n') == 1 and 'GPU build of PaddlePaddle' in err


def _refine_selection_tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'refine_selection', os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                         'tools', 'refine_selection.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_worst_patches_are_the_4x4_patches_with_most_error():
    tool = _refine_selection_tool()
    error = np.zeros((16, 20))
    error[4:8, 8:12] = 1.0      # patch (1, 2): 16
    error[12, 0] = 5.0          # patch (3, 0): 5
    error[0:4, 16:20] = 0.25    # patch (0, 4): 4
    mask = tool.worst_patches(error, 2)
    assert mask.sum() == 2 * 16
    assert mask[4:8, 8:12].all() and mask[12:16, 0:4].all() and not mask[0:4, 16:20].any()


def test_refine_selection_with_a_budget_for_every_patch_is_full_refinement(tmp_path, converted_weights):
    """With as many refined pixels as the image has, the truth's choice is full refinement (the
    network's is not quite: sampling skips patches whose predicted error is exactly 0); refining
    nothing is the coarse matte, which differs. The composite is not a multiple of 4 in size: it is
    cropped as eval.py crops it."""
    tool = _refine_selection_tool()
    rng = np.random.default_rng(0)
    bgr = rng.random((66, 98, 3)).astype(np.float32)
    pha = np.zeros((66, 98), np.float32)
    pha[16:48, 24:72] = 1.0
    pha[16:48, 20:24] = 0.5
    src = pha[..., None] * rng.random((1, 1, 3)).astype(np.float32) + (1 - pha[..., None]) * bgr
    for kind, img in (('src', src), ('bgr', bgr), ('pha', pha), ('trimap', make_trimap(pha) / 255.0)):
        write_image(str(tmp_path / kind / 'a.png'), img)
    scores = tool.selection_scores(converted_weights, str(tmp_path), pixels=64 * 96, progress=False)
    assert set(scores) == {'coarse', 'network', 'truth', 'full'}
    assert scores['truth'] == pytest.approx(scores['full'])
    assert scores['coarse'] != pytest.approx(scores['full'])
    assert scores['network'] != pytest.approx(scores['coarse'])
