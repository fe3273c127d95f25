"""Exported Paddle Inference models (oneDNN) give the dygraph outputs within 1e-5.

Each refine mode of the 256x384 parity case is exported from the official-format reference
checkpoint and run by utils.deploy.engine.InferenceEngine with oneDNN on; every output must be within
1e-5 of the dygraph model and ref_sm identical (so also within the parity tolerance of the
official outputs). The 720x1280 case (odd decoder sizes: the general resampling path), the
kernel-1 refiner, a batch of 2, the no-patch case and the export folder itself are covered too.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import MOBILENET_REF, ROOT, require_reference
from model.weights import build_model, convert_state_dict, read_torch_checkpoint
from utils.convert_weights import save_pdparams
from utils.deploy.engine import OUTPUT_NAMES, DygraphEngine, InferenceEngine, cpu_flags
from utils.deploy.export import (METADATA_FILE, ExportError, cached_export, export_model, load_metadata,
                          main as export_main)

TOLERANCE = 1e-5   # exported vs dygraph
PARITY = 1e-4      # vs the official outputs (tests/test_parity.py)
MODES = {
    'full': dict(refine_mode='full'),
    'sampling80000': dict(refine_mode='sampling', refine_sample_pixels=80_000),
    'sampling4000': dict(refine_mode='sampling', refine_sample_pixels=4_000),
    'thresholding0.1': dict(refine_mode='thresholding', refine_threshold=0.1),
}


@pytest.fixture(scope='module')
def exports(reference_weights, tmp_path_factory):
    """mode -> export folder of the kernel-3 reference weights (one export per mode)."""
    root = tmp_path_factory.mktemp('exports')
    return {mode: cached_export(reference_weights, cache_dir=str(root), **options)
            for mode, options in MODES.items()}


def _compare(exported, eager, tolerance=TOLERANCE):
    diffs = {name: float(np.abs(exported[name] - eager[name]).max()) for name in OUTPUT_NAMES}
    assert np.array_equal(exported['ref_sm'], eager['ref_sm']), 'a different set of patches'
    assert max(diffs.values()) <= tolerance, diffs
    return diffs


@pytest.mark.parametrize('mode', list(MODES))
def test_export_matches_dygraph_and_official(exports, reference_weights, mode):
    case = np.load(os.path.join(MOBILENET_REF, 'case_256x384.npz'))
    engine = InferenceEngine(exports[mode])
    assert engine.onednn
    exported = engine(case['src'], case['bgr'])
    eager = DygraphEngine(build_model(reference_weights, **MODES[mode]))(case['src'], case['bgr'])
    diffs = _compare(exported, eager)
    print(f'\n{mode}: max |exported - dygraph| ' + ', '.join(f'{k} {v:.1e}' for k, v in diffs.items()))
    for name in ('pha', 'fgr', 'ref_sm'):
        reference = case[f'{mode}/{name}']
        assert np.abs(exported[name] - reference).max() <= PARITY, name


def test_export_odd_sizes_720p(exports, reference_weights):
    """720x1280: decoder steps 12->23 and 23->45 take the general (matmul) resampling path."""
    case = np.load(os.path.join(MOBILENET_REF, 'case_720x1280.npz'))
    exported = InferenceEngine(exports['sampling80000'])(case['src'], case['bgr'])
    assert np.array_equal(exported['ref_sm'], case['sampling80000/ref_sm'])
    assert np.abs(exported['pha'] - case['sampling80000/pha']).max() <= PARITY
    for name in ('pha_sm', 'fgr_sm', 'err_sm'):
        assert np.abs(exported[name] - case[f'coarse/{name}']).max() <= PARITY, name


def test_export_batch_of_two_gives_each_its_own_result(exports, reference_weights):
    case = np.load(os.path.join(MOBILENET_REF, 'case_256x384.npz'))
    src = np.concatenate([case['src'], case['bgr']])       # two different images
    bgr = np.concatenate([case['bgr'], case['src']])
    engine = InferenceEngine(exports['sampling4000'])
    batched = engine(src, bgr)
    for i in range(2):
        single = engine(src[i:i + 1], bgr[i:i + 1])
        for name in OUTPUT_NAMES:
            np.testing.assert_allclose(batched[name][i:i + 1], single[name], atol=TOLERANCE)


def test_export_with_no_selected_patch(reference_weights, tmp_path):
    """Threshold 1.0 selects nothing: the graph's placeholder patch must change nothing."""
    out = cached_export(reference_weights, cache_dir=str(tmp_path), refine_mode='thresholding',
                        refine_threshold=1.0)
    case = np.load(os.path.join(MOBILENET_REF, 'case_256x384.npz'))
    exported = InferenceEngine(out)(case['src'], case['bgr'])
    eager = DygraphEngine(build_model(reference_weights, refine_mode='thresholding',
                                      refine_threshold=1.0))(case['src'], case['bgr'])
    assert exported['ref_sm'].sum() == 0
    _compare(exported, eager)


def test_export_kernel_1(tmp_path):
    require_reference()
    official = read_torch_checkpoint(os.path.join(MOBILENET_REF, 'weights.pth'))
    official.update(read_torch_checkpoint(os.path.join(MOBILENET_REF, 'refiner_k1.pth')))
    state, config = convert_state_dict(official)
    assert config['refine_kernel_size'] == 1
    weights = str(tmp_path / 'k1.pdparams')
    save_pdparams(state, weights)
    out = cached_export(weights, cache_dir=str(tmp_path / 'cache'), refine_mode='sampling',
                        refine_sample_pixels=80_000)
    assert load_metadata(out)['options']['refine_kernel_size'] == 1
    case = np.load(os.path.join(MOBILENET_REF, 'case_256x384_k1.npz'))
    engine = InferenceEngine(out)
    # oneDNN's AVX-512 kernels get this refiner wrong (utils.deploy.engine.onednn_breaks)
    assert engine.onednn == ('avx512f' not in cpu_flags())
    exported = engine(case['src'], case['bgr'])
    eager = DygraphEngine(build_model(weights, refine_mode='sampling'))(case['src'], case['bgr'])
    _compare(exported, eager)
    assert np.abs(exported['pha'] - case['sampling80000/pha']).max() <= PARITY


def test_onednn_is_avoided_only_for_kernel_1_refiners_on_avx512(monkeypatch):
    import utils.deploy.engine as engine_module
    for flags, kernel, breaks in [(['avx2', 'avx512f'], 1, True), (['avx2', 'avx512f'], 3, False),
                                  (['avx2', 'fma'], 1, False)]:
        monkeypatch.setattr(engine_module, 'cpu_flags', lambda: flags)
        assert engine_module.onednn_breaks({'refine_kernel_size': kernel}) == breaks


def test_export_folder_records_options_and_is_reused(exports, reference_weights, tmp_path):
    folder = exports['sampling4000']
    assert sorted(os.listdir(folder)) == ['export.json', 'model.json', 'model.pdiparams']
    metadata = json.load(open(os.path.join(folder, METADATA_FILE)))
    assert metadata['options'] == {'backbone': 'mobilenetv2', 'backbone_scale': 0.25,
                                   'refine_mode': 'sampling', 'refine_sample_pixels': 4000,
                                   'refine_threshold': 0.1, 'refine_kernel_size': 3,
                                   'refine_prevent_oversampling': True}
    assert len(metadata['weights_sha256']) == 64 and metadata['paddle_version']
    assert metadata['outputs'] == list(OUTPUT_NAMES)
    assert InferenceEngine(folder).options == metadata['options']
    # the same weights and options map to the same folder, which is not written again
    stamp = os.path.getmtime(os.path.join(folder, 'model.pdiparams'))
    again = cached_export(reference_weights, cache_dir=os.path.dirname(folder),
                          refine_mode='sampling', refine_sample_pixels=4_000)
    assert again == folder
    assert os.path.getmtime(os.path.join(folder, 'model.pdiparams')) == stamp
    # other options, another folder
    other = cached_export(reference_weights, cache_dir=os.path.dirname(folder),
                          refine_mode='sampling', refine_sample_pixels=4_000,
                          refine_prevent_oversampling=False)
    assert other != folder


def test_export_command_line_and_atomic_replace(reference_weights, tmp_path, capsys):
    out = str(tmp_path / 'export')
    os.makedirs(out)
    with open(os.path.join(out, 'stale.txt'), 'w') as f:
        f.write('an older export')
    assert export_main([reference_weights, out, '--refine-mode', 'thresholding',
                        '--refine-threshold', '0.2', '--no-refine-prevent-oversampling']) == 0
    assert 'Exported' in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ['export.json', 'model.json', 'model.pdiparams']
    options = load_metadata(out)['options']
    assert options['refine_mode'] == 'thresholding' and options['refine_threshold'] == 0.2
    assert options['refine_prevent_oversampling'] is False
    # no temporary folders left next to it
    assert os.listdir(tmp_path) == ['export']


def test_export_errors_are_clear(reference_weights, tmp_path):
    with pytest.raises(ExportError, match='holds mobilenetv2'):
        export_model(reference_weights, str(tmp_path / 'x'), backbone='resnet50')
    with pytest.raises(ExportError, match='export.json'):
        load_metadata(str(tmp_path))
    with pytest.raises(TypeError, match='unknown model options'):
        export_model(reference_weights, str(tmp_path / 'x'), refine_mod='full')
    assert not os.path.exists(tmp_path / 'x')


def test_onnx_export_matches_onnxruntime(reference_weights, tmp_path):
    """Optional extra: paddle2onnx export checked with onnxruntime (skipped if not installed)."""
    pytest.importorskip('paddle2onnx')
    ort = pytest.importorskip('onnxruntime')
    out = str(tmp_path / 'onnx')
    export_model(reference_weights, out, formats=('paddle', 'onnx'), refine_mode='sampling',
                 refine_sample_pixels=4_000)
    case = np.load(os.path.join(MOBILENET_REF, 'case_256x384.npz'))
    session = ort.InferenceSession(os.path.join(out, 'model.onnx'), providers=['CPUExecutionProvider'])
    outputs = session.run(None, {'src': case['src'], 'bgr': case['bgr']})
    eager = DygraphEngine(build_model(reference_weights, refine_mode='sampling',
                                      refine_sample_pixels=4_000))(case['src'], case['bgr'])
    _compare(dict(zip(OUTPUT_NAMES, outputs)), eager)


# ---------------------------------------------------------------- the export cache

def test_export_cache_is_in_the_user_cache_folder(monkeypatch, tmp_path):
    from utils.deploy.export import CACHE_APP_NAME, CACHE_ENV, export_cache_dir
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / 'mine'))
    assert export_cache_dir() == str(tmp_path / 'mine' / 'exports')
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
    assert export_cache_dir() == str(tmp_path / 'xdg' / CACHE_APP_NAME / 'exports')
    monkeypatch.delenv('XDG_CACHE_HOME')
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert export_cache_dir() == str(tmp_path / 'home' / '.cache' / CACHE_APP_NAME / 'exports')


def _fake_export(cache, name, age):
    folder = cache / name
    folder.mkdir(parents=True)
    (folder / METADATA_FILE).write_text('{}')
    os.utime(folder / METADATA_FILE, (time.time() - age, time.time() - age))
    return folder


def test_evict_exports_keeps_the_most_recently_used(tmp_path):
    from utils.deploy.export import evict_exports
    folders = [_fake_export(tmp_path, f'key{i}', age=100 * i) for i in range(5)]  # key0 newest
    (tmp_path / 'not-an-export').mkdir()
    removed = evict_exports(str(tmp_path), 2, keep=str(folders[4]))
    assert sorted(removed) == sorted(str(f) for f in folders[2:4])
    assert sorted(p.name for p in tmp_path.iterdir()) == ['key0', 'key1', 'key4', 'not-an-export']


def test_cached_export_from_a_read_only_folder_is_bounded(reference_weights, tmp_path, monkeypatch):
    """Nothing is written beside the weights; the cache drops its least recently used export."""
    from utils.deploy.export import CACHE_ENV, export_cache_dir
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / 'cache'))
    shared = tmp_path / 'shared'
    shared.mkdir()
    weights = shared / 'weights.pth'
    shutil.copy(reference_weights, weights)
    shared.chmod(0o555)
    cache = tmp_path / 'cache' / 'exports'
    old, recent = _fake_export(cache, 'old', age=1000), _fake_export(cache, 'recent', age=10)
    try:
        out = cached_export(str(weights), max_entries=2, refine_mode='sampling',
                            refine_sample_pixels=4_000)
    finally:
        shared.chmod(0o755)
    assert os.path.dirname(out) == export_cache_dir() == str(cache)
    assert os.listdir(shared) == ['weights.pth']
    assert sorted(os.listdir(cache)) == sorted([os.path.basename(out), 'recent'])
    assert not old.exists()
    os.utime(recent / METADATA_FILE, (time.time() - 5000, time.time() - 5000))
    before = os.path.getmtime(os.path.join(out, METADATA_FILE))
    time.sleep(0.01)
    assert cached_export(str(weights), refine_mode='sampling', refine_sample_pixels=4_000) == out
    assert os.path.getmtime(os.path.join(out, METADATA_FILE)) > before  # its use is recorded


@pytest.mark.parametrize('kind', ['garbage', 'wrong_shape'])
def test_failed_weights_leave_no_cache_folder(kind, tmp_path, monkeypatch):
    import paddle
    from model import MattingRefine
    from model.weights import CheckpointError
    from utils.convert_weights import save_pdparams
    from utils.deploy.export import CACHE_ENV
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / 'cache'))
    weights = tmp_path / 'weights' / 'w.pdparams'
    weights.parent.mkdir()
    if kind == 'garbage':
        weights.write_bytes(b'not weights')
    else:
        paddle.seed(0)
        state = {k: v.numpy() for k, v in MattingRefine('mobilenetv2').state_dict().items()}
        state['refiner.conv1.weight'] = state['refiner.conv1.weight'][:, :, :1]
        save_pdparams(state, str(weights))
    with pytest.raises(CheckpointError):
        cached_export(str(weights))
    assert not (tmp_path / 'cache').exists()
    assert os.listdir(weights.parent) == ['w.pdparams']


def test_export_cli_device_option_and_quiet_console(reference_weights, tmp_path):
    """--device comes from utils.deploy.engine.DEVICES; an export prints no library noise."""
    import paddle
    from utils.deploy.engine import DEVICES
    command = [sys.executable, '-m', 'utils.deploy.export', reference_weights, str(tmp_path / 'out'),
               '--refine-mode', 'thresholding']
    done = subprocess.run(command + ['--device', 'cpu'], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ''  # no `PIR not support input out tensor`, no `No ccache found`
    assert 'Exported' in done.stdout
    assert 'gpu' in DEVICES
    if not paddle.device.is_compiled_with_cuda():
        done = subprocess.run(command + ['--device', 'gpu'], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 1 and done.stderr.count('\n') == 1
        assert 'GPU build of PaddlePaddle' in done.stderr


def test_onnx_graph_has_no_if_and_serves_any_size(reference_weights, tmp_path):
    """One ONNX graph for every input size: no If (no branch on runtime sizes in it)."""
    onnx = pytest.importorskip('onnx')
    pytest.importorskip('paddle2onnx')
    out = str(tmp_path / 'onnx')
    metadata = export_model(reference_weights, out, formats=('onnx',))
    assert metadata['formats'] == ['onnx'] and metadata['program'] is None
    assert sorted(os.listdir(out)) == ['export.json', 'model.onnx']
    graph = onnx.load(os.path.join(out, 'model.onnx')).graph
    ops = {node.op_type for node in graph.node}
    assert 'If' not in ops and 'Loop' not in ops and 'Resize' in ops
    for tensor in graph.input:
        dims = tensor.type.tensor_type.shape.dim
        assert [d.dim_value or None for d in dims][1] == 3 and not dims[2].dim_value
    with pytest.raises(ExportError, match='no paddle model'):
        load_metadata(out)
