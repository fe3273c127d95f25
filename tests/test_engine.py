"""utils.deploy.engine: one numpy interface over the dygraph model and exported Paddle Inference models."""
import os
import shutil
import warnings

import numpy as np
import pytest

from conftest import MOBILENET_REF
from utils.deploy.engine import (OUTPUT_NAMES, DygraphEngine, InferenceEngine, cpu_supports_bfloat16,
                          create_engine)
from utils.deploy.export import ExportError

OPTIONS = dict(refine_mode='sampling', refine_sample_pixels=4_000)


@pytest.fixture(scope='module')
def weights(reference_weights, tmp_path_factory):
    """A private copy of the reference weights (tests below change files around it)."""
    path = str(tmp_path_factory.mktemp('weights') / 'mobilenetv2.pth')
    shutil.copy(reference_weights, path)
    return path


@pytest.fixture(scope='module')
def case():
    data = np.load(os.path.join(MOBILENET_REF, 'case_256x384.npz'))
    return data['src'], data['bgr']


@pytest.fixture(scope='module')
def inference(weights):
    return create_engine(weights, engine='inference', threads=2, **OPTIONS)


def test_inference_engine_is_cached_in_the_user_cache(inference, weights):
    from utils.deploy.export import export_cache_dir
    assert isinstance(inference, InferenceEngine) and inference.onednn and inference.threads == 2
    assert os.path.dirname(inference.model_dir) == export_cache_dir()
    assert not os.path.exists(weights + '.inference')
    assert inference.options['refine_sample_pixels'] == 4000
    assert inference.options['backbone'] == 'mobilenetv2'
    again = create_engine(weights, engine='inference', **OPTIONS)
    assert again.model_dir == inference.model_dir


def test_engines_agree_and_share_the_interface(inference, weights, case):
    eager = create_engine(weights, engine='dygraph', **OPTIONS)
    assert isinstance(eager, DygraphEngine)
    a, b = inference(*case), eager(*case)
    assert list(a) == list(b) == list(OUTPUT_NAMES)
    for name in OUTPUT_NAMES:
        assert a[name].dtype == np.float32 and a[name].shape == b[name].shape
        assert np.abs(a[name] - b[name]).max() <= 1e-5, name


def test_auto_is_inference_on_the_cpu(weights):
    engine = create_engine(weights, engine='auto', **OPTIONS)
    assert isinstance(engine, InferenceEngine)


def test_auto_falls_back_to_dygraph_with_a_warning(weights, monkeypatch):
    import utils.deploy.export

    def broken(*args, **kwargs):
        raise RuntimeError('simulated predictor failure')

    monkeypatch.setattr(utils.deploy.export, 'cached_export', broken)
    with pytest.warns(RuntimeWarning, match='simulated predictor failure'):
        engine = create_engine(weights, engine='auto', **OPTIONS)
    assert isinstance(engine, DygraphEngine)
    with pytest.raises(RuntimeError, match='simulated'):
        create_engine(weights, engine='inference', **OPTIONS)


def test_auto_reports_bad_weights_instead_of_falling_back(tmp_path):
    from model.weights import CheckpointError
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no fallback warning either
        with pytest.raises(CheckpointError, match='no such file'):
            create_engine(str(tmp_path / 'missing.pdparams'), engine='auto')


def test_unknown_engine_and_bad_inputs(inference, weights):
    with pytest.raises(ValueError, match='unknown engine'):
        create_engine(weights, engine='onnx')
    with pytest.raises(ValueError, match='divisible by 4'):
        inference(np.zeros((1, 3, 62, 96), np.float32), np.zeros((1, 3, 62, 96), np.float32))
    with pytest.raises(ValueError, match='same shape'):
        inference(np.zeros((1, 3, 64, 96), np.float32), np.zeros((1, 3, 64, 92), np.float32))
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\)'):
        inference(np.zeros((3, 64, 96), np.float32), np.zeros((3, 64, 96), np.float32))


def test_inference_engine_needs_an_export_folder(tmp_path):
    with pytest.raises(ExportError, match='export.json'):
        InferenceEngine(str(tmp_path))


def test_precision_checks(inference):
    with pytest.raises(ValueError, match='GPU only'):
        InferenceEngine(inference.model_dir, precision='float16')
    with pytest.raises(ValueError, match='CPU with oneDNN'):
        InferenceEngine(inference.model_dir, precision='bfloat16', onednn=False)


@pytest.mark.skipif(not cpu_supports_bfloat16(), reason='CPU without bfloat16 instructions')
def test_bfloat16_runs_close_to_float32(inference, case):
    """bfloat16 (oneDNN): same outputs within bf16 accuracy; the patch choice may differ a little."""
    bf16 = InferenceEngine(inference.model_dir, precision='bfloat16')
    a, b = inference(*case), bf16(*case)
    assert np.abs(a['pha_sm'] - b['pha_sm']).mean() < 0.01
    assert np.abs(a['pha'] - b['pha']).mean() < 0.01


@pytest.mark.parametrize('problem', ['base', 'backbone'])
def test_auto_reports_mismatched_weights_in_one_line(problem, tmp_path, capfd):
    """MattingBase weights or another backbone: the error alone, no fallback warning first."""
    import paddle
    from model import MattingBase, MattingRefine
    from model.weights import CheckpointError
    from utils.convert_weights import save_pdparams
    paddle.seed(0)
    path = str(tmp_path / 'w.pdparams')
    net = MattingRefine('mobilenetv2') if problem == 'backbone' else MattingBase('mobilenetv2')
    save_pdparams({k: v.numpy() for k, v in net.state_dict().items()}, path)
    options = dict(OPTIONS, backbone='resnet50') if problem == 'backbone' else OPTIONS
    expected = 'backbone resnet50 was requested' if problem == 'backbone' else 'MattingBase'
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        with pytest.raises(CheckpointError, match=expected) as info:
            create_engine(path, engine='auto', cache_dir=str(tmp_path / 'cache'), **options)
    assert '\n' not in str(info.value)
    assert not os.path.exists(tmp_path / 'cache')


def test_fallback_warning_is_one_line(weights, monkeypatch):
    import utils.deploy.export

    def broken(*args, **kwargs):
        raise RuntimeError('simulated predictor failure')

    monkeypatch.setattr(utils.deploy.export, 'cached_export', broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        create_engine(weights, engine='auto', **OPTIONS)
    text = warnings.formatwarning(caught[0].message, caught[0].category, caught[0].filename,
                                  caught[0].lineno, caught[0].line)
    assert text.strip().count('\n') == 0 and 'simulated predictor failure' in text
