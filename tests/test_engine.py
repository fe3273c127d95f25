"""utils.deploy.engine: one numpy interface over the dygraph model and the exported models
(Paddle Inference, ONNX Runtime, OpenVINO), each exact against dygraph."""
import os
import shutil
import warnings

import numpy as np
import pytest

from conftest import MOBILENET_REF
from utils.deploy.benchmark import make_inputs
from utils.deploy.engine import (EXPORT_FORMATS, OUTPUT_NAMES, DygraphEngine, InferenceEngine,
                                 auto_engine_order, cpu_supports_bfloat16, create_engine)
from utils.deploy.export import ExportError
from utils.deploy.onnx_engines import MAX_SHAPES, OnnxRuntimeEngine, OpenVINOEngine

OPTIONS = dict(refine_mode='sampling', refine_sample_pixels=4_000)
# every patch budget used up (no skipping of zero-error patches): the selection is compared
SAMPLING = dict(refine_mode='sampling', refine_sample_pixels=20_000, refine_prevent_oversampling=False)


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


@pytest.fixture(scope='module')
def scene():
    """A realistic 480x640 scene (soft-edged textured blob over a smooth plate, sensor noise)."""
    return make_inputs(1, 480, 640)


@pytest.fixture(scope='module')
def eager_scene(weights, scene):
    return create_engine(weights, engine='dygraph', **SAMPLING)(*scene)


@pytest.mark.parametrize('engine', list(EXPORT_FORMATS))
def test_every_exported_engine_matches_dygraph(engine, weights, scene, eager_scene):
    """Same outputs within 1e-5 and the same refined patches as the dygraph model."""
    exported = create_engine(weights, engine=engine, threads=2, **SAMPLING)
    assert exported.name == engine
    out = exported(*scene)
    assert list(out) == list(OUTPUT_NAMES)
    for name in OUTPUT_NAMES:
        assert out[name].dtype == np.float32 and out[name].shape == eager_scene[name].shape, name
        assert np.abs(out[name] - eager_scene[name]).max() <= 1e-5, (engine, name)
    assert eager_scene['ref_sm'].sum() == 20_000 // 16
    assert np.array_equal(out['ref_sm'], eager_scene['ref_sm'])


@pytest.mark.parametrize('cls', [OnnxRuntimeEngine, OpenVINOEngine])
def test_onnx_engines_compile_once_per_shape(cls, weights, case):
    """One ONNX export serves every size and batch; compiled models are kept per shape."""
    first = create_engine(weights, engine=cls.name, **OPTIONS)
    assert isinstance(first, cls)
    engine = cls(first.model_dir, threads=1)
    eager = create_engine(weights, engine='dygraph', **OPTIONS)
    src, bgr = case
    shapes = [(256, 384), (128, 196), (256, 384)]
    for h, w in shapes:
        a, b = engine(src[:, :, :h, :w], bgr[:, :, :h, :w]), eager(src[:, :, :h, :w], bgr[:, :, :h, :w])
        assert max(np.abs(a[k] - b[k]).max() for k in OUTPUT_NAMES) <= 1e-5
    assert list(engine._compiled) == [(1, 3, 128, 196), (1, 3, 256, 384)]  # most recent last
    pair = engine(np.concatenate([src, src[:, :, ::-1]]), np.concatenate([bgr, bgr[:, :, ::-1]]))
    single = engine(src[:, :, ::-1], bgr[:, :, ::-1])
    assert np.abs(pair['pha'][1:] - single['pha']).max() <= 1e-6
    for i in range(MAX_SHAPES + 1):
        engine(src[:, :, :64, :64 + 4 * i], bgr[:, :, :64, :64 + 4 * i])
    assert len(engine._compiled) == MAX_SHAPES


def test_onnx_engines_refuse_what_they_cannot_do_exactly(weights):
    model_dir = create_engine(weights, engine='onnxruntime', **OPTIONS).model_dir
    with pytest.raises(ValueError, match='float32 only'):
        OpenVINOEngine(model_dir, precision='bfloat16')
    with pytest.raises(ValueError, match='runs on the CPU'):
        OnnxRuntimeEngine(model_dir, device='gpu')
    with pytest.raises(ExportError, match='no onnx model'):
        OnnxRuntimeEngine(create_engine(weights, engine='inference', **OPTIONS).model_dir)


def test_auto_takes_the_measured_order_on_the_cpu(weights):
    assert auto_engine_order(['avx2', 'avx512f'])[:2] == ('openvino', 'onnxruntime')
    assert auto_engine_order(['avx2', 'fma'])[:2] == ('onnxruntime', 'openvino')
    assert auto_engine_order()[2:] == ('inference', 'dygraph')
    engine = create_engine(weights, engine='auto', **OPTIONS)
    assert engine.name == auto_engine_order()[0]


def test_auto_skips_missing_packages_silently(weights, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name in ('onnxruntime', 'openvino') else real(name, *a))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        engine = create_engine(weights, engine='auto', **OPTIONS)
    assert engine.name == 'inference'
    with pytest.raises(ImportError, match='needs onnxruntime'):
        create_engine(weights, engine='onnxruntime', **OPTIONS)


def test_auto_falls_back_engine_by_engine_with_a_warning(weights, monkeypatch):
    import utils.deploy.export

    def broken(*args, **kwargs):
        raise RuntimeError('simulated predictor failure')

    monkeypatch.setattr(utils.deploy.export, 'cached_export', broken)
    with pytest.warns(RuntimeWarning, match='simulated predictor failure') as caught:
        engine = create_engine(weights, engine='auto', **OPTIONS)
    assert isinstance(engine, DygraphEngine)
    assert [str(w.message).split()[0] for w in caught] == list(auto_engine_order()[:3])
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
    with pytest.raises(ValueError, match='MattingBase runs on the dygraph engine only'):
        create_engine(weights, engine='openvino', model_type='base')
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
    for warning in caught:
        text = warnings.formatwarning(warning.message, warning.category, warning.filename,
                                      warning.lineno, warning.line)
        assert text.strip().count('\n') == 0 and 'simulated predictor failure' in text


@pytest.fixture(scope='module')
def kernel1_weights(tmp_path_factory):
    """The reference model with the official kernel-1 refiner."""
    from model.weights import convert_state_dict, read_torch_checkpoint
    from utils.convert_weights import save_pdparams
    official = read_torch_checkpoint(os.path.join(MOBILENET_REF, 'weights.pth'))
    official.update(read_torch_checkpoint(os.path.join(MOBILENET_REF, 'refiner_k1.pth')))
    state, config = convert_state_dict(official)
    assert config['refine_kernel_size'] == 1
    path = str(tmp_path_factory.mktemp('k1') / 'k1.pdparams')
    save_pdparams(state, path)
    return path


@pytest.mark.parametrize('options', [dict(refine_mode='full'),
                                     dict(refine_mode='thresholding', refine_threshold=0.1),
                                     dict(refine_mode='thresholding', refine_threshold=1.0),
                                     dict(refine_mode='sampling', refine_sample_pixels=80_000,
                                          kernel_1=True)],
                         ids=['full', 'thresholding', 'nothing-selected', 'kernel-1'])
def test_onnx_engines_in_every_refine_mode(options, weights, kernel1_weights):
    """Both ONNX engines against dygraph in the other refine modes and with the kernel-1 refiner
    (the parity cases of the official reference)."""
    options = dict(options)
    path = kernel1_weights if options.pop('kernel_1', False) else weights
    name = 'case_256x384_k1.npz' if path == kernel1_weights else 'case_256x384.npz'
    data = np.load(os.path.join(MOBILENET_REF, name))
    src, bgr = data['src'], data['bgr']
    eager = create_engine(path, engine='dygraph', **options)(src, bgr)
    for engine in ('onnxruntime', 'openvino'):
        out = create_engine(path, engine=engine, **options)(src, bgr)
        for key in OUTPUT_NAMES:
            assert np.abs(out[key] - eager[key]).max() <= 1e-5, (engine, key)
        assert np.array_equal(out['ref_sm'], eager['ref_sm'])
