"""Model behaviour beyond parity: input checks, batching, selection rules, all backbones."""
import numpy as np
import paddle
import pytest

from model import MattingBase, MattingRefine
from model.refiner import Refiner, crop_patches, replace_patches


def _inputs(batch=1, height=64, width=96, seed=0):
    rng = np.random.default_rng(seed)
    src = rng.random((batch, 3, height, width), dtype=np.float32)
    bgr = np.clip(src + rng.normal(0, 0.2, src.shape).astype(np.float32), 0, 1)
    return paddle.to_tensor(src), paddle.to_tensor(bgr)


@pytest.fixture(scope='module')
def mobilenet_refine():
    paddle.seed(0)
    model = MattingRefine('mobilenetv2', refine_mode='sampling', refine_sample_pixels=2_000)
    model.eval()
    return model


@pytest.mark.parametrize('backbone', ['mobilenetv2', 'resnet50', 'resnet101'])
def test_output_shapes_and_ranges(backbone):
    paddle.seed(0)
    model = MattingRefine(backbone, backbone_scale=0.25, refine_mode='thresholding')
    model.eval()
    src, bgr = _inputs(height=64, width=96)
    with paddle.no_grad():
        pha, fgr, pha_sm, fgr_sm, err_sm, ref_sm = model(src, bgr)
    assert pha.shape == [1, 1, 64, 96] and fgr.shape == [1, 3, 64, 96]
    assert pha_sm.shape == [1, 1, 16, 24] and fgr_sm.shape == [1, 3, 16, 24]
    assert err_sm.shape == [1, 1, 16, 24] and ref_sm.shape == [1, 1, 16, 24]
    for out in (pha, fgr, pha_sm, fgr_sm, err_sm):
        assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    assert set(np.unique(ref_sm.numpy())) <= {0.0, 1.0}
    base = MattingBase(backbone)
    base.eval()
    with paddle.no_grad():
        outs = base(src, bgr)
    assert [o.shape[1] for o in outs] == [1, 3, 1, 32]
    assert float(outs[3].min()) >= 0.0


def test_batch_gives_each_sample_its_batch_1_result(mobilenet_refine):
    src, bgr = _inputs(batch=3, seed=1)
    with paddle.no_grad():
        batched = mobilenet_refine(src, bgr)
        for i in range(3):
            single = mobilenet_refine(src[i:i + 1], bgr[i:i + 1])
            for a, b in zip(batched, single):
                np.testing.assert_allclose(a[i:i + 1].numpy(), b.numpy(), atol=1e-5)


def test_sampling_refines_exactly_k_patches_without_oversampling_prevention():
    paddle.seed(0)
    model = MattingRefine('mobilenetv2', refine_mode='sampling', refine_sample_pixels=16 * 37,
                          refine_prevent_oversampling=False)
    model.eval()
    src, bgr = _inputs(batch=2)
    with paddle.no_grad():
        ref_sm = model(src, bgr)[-1].numpy()
    assert ref_sm.reshape(2, -1).sum(axis=1).tolist() == [37, 37]


def test_sampling_more_patches_than_exist_refines_everything():
    refiner = Refiner('sampling', sample_pixels=10**9, prevent_oversampling=False)
    err = paddle.rand([1, 1, 8, 8])
    assert float(refiner.select_refinement_regions(err).sum()) == 64


def test_thresholding_selects_error_above_threshold():
    refiner = Refiner('thresholding', threshold=0.5)
    err = paddle.to_tensor(np.array([[[[0.2, 0.5], [0.51, 0.9]]]], np.float32))
    assert refiner.select_refinement_regions(err).numpy().ravel().tolist() == [0, 0, 1, 1]


def test_crop_and_replace_patches_follow_the_grid():
    x = paddle.arange(2 * 3 * 8 * 12, dtype='float32').reshape([2, 3, 8, 12])
    idx = paddle.to_tensor(np.array([[0, 0, 0], [1, 1, 2]], np.int64))
    patches = crop_patches(x, idx, size=4, padding=2)
    assert patches.shape == [2, 3, 8, 8]
    xp = np.pad(x.numpy(), ((0, 0), (0, 0), (2, 2), (2, 2)))
    np.testing.assert_array_equal(patches.numpy()[1], xp[1, :, 4:12, 8:16])
    replaced = replace_patches(x, -paddle.ones([2, 3, 4, 4]), idx).numpy()
    expected = x.numpy().copy()
    expected[0, :, 0:4, 0:4] = -1
    expected[1, :, 4:8, 8:12] = -1
    np.testing.assert_array_equal(replaced, expected)


def test_no_selected_patch_returns_upsampled_coarse_output():
    paddle.seed(0)
    model = MattingRefine('mobilenetv2', refine_mode='thresholding', refine_threshold=1.0)
    model.eval()
    src, bgr = _inputs()
    with paddle.no_grad():
        pha, _, pha_sm, _, _, ref_sm = model(src, bgr)
    assert float(ref_sm.sum()) == 0
    up = paddle.nn.functional.interpolate(pha_sm, size=[64, 96], mode='bilinear', align_corners=False)
    np.testing.assert_allclose(pha.numpy(), up.numpy(), atol=1e-6)


@pytest.mark.parametrize('src_shape,bgr_shape,message', [
    ([1, 3, 64, 96], [1, 3, 64, 92], 'same shape'),
    ([1, 3, 62, 96], [1, 3, 62, 96], 'divisible by 4'),
    ([1, 3, 64, 98], [1, 3, 64, 98], 'divisible by 4'),
    ([1, 4, 64, 96], [1, 4, 64, 96], '(B, 3, H, W)'),
    ([3, 64, 96], [3, 64, 96], '(B, 3, H, W)'),
])
def test_bad_input_shapes_raise_value_error(mobilenet_refine, src_shape, bgr_shape, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)')):
        mobilenet_refine(paddle.zeros(src_shape), paddle.zeros(bgr_shape))


@pytest.mark.parametrize('kwargs,message', [
    (dict(backbone_scale=0.75), 'backbone_scale'),
    (dict(refine_mode='magic'), 'refine_mode'),
    (dict(refine_kernel_size=5), 'refine_kernel_size'),
])
def test_bad_options_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MattingRefine('mobilenetv2', **kwargs)


def test_unknown_backbone_raises_value_error():
    with pytest.raises(ValueError, match='backbone'):
        MattingBase('vgg16')
