"""Tests of utils/evaluation/metrics.py and utils/evaluation/trimap.py.

Each metric is checked on small cases worked out by hand and against a second,
deliberately naive implementation written here from the MATLAB definitions (explicit
loops, explicit padding, a flood fill instead of scipy's labelling).
"""
import math
from collections import deque

import numpy as np
import pytest

from utils.evaluation import metrics as M
from utils.evaluation.trimap import make_trimap


def unknown(shape):
    return np.full(shape, 128, np.uint8)


# ------------------------------------------------------------------ SAD / MSE / FG-MSE


def test_sad_and_mse_hand_computed():
    pred = np.array([[0.0, 0.5], [1.0, 0.25]])
    true = np.array([[0.0, 1.0], [0.0, 0.25]])
    trimap = np.array([[128, 128], [128, 0]], np.uint8)  # last pixel is outside the unknown region
    # |errors| on unknown: 0, 0.5, 1 -> 1.5 / 1000; squared: 0, 0.25, 1 -> 1.25 / 3
    assert M.sad(pred, true, trimap) == pytest.approx(1.5e-3)
    assert M.mse(pred, true, trimap) == pytest.approx(1.25 / 3)


def test_uint8_input_is_divided_by_255():
    pred = np.array([[255, 51]], np.uint8)
    true = np.array([[0, 0]], np.uint8)
    assert M.sad(pred, true, unknown((1, 2))) == pytest.approx(1.2e-3)
    assert M.mse(pred, true, unknown((1, 2))) == pytest.approx((1 + 0.04) / 2)


def test_float_input_out_of_range_is_rejected():
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        M.sad(np.full((2, 2), 255.0), np.zeros((2, 2)), unknown((2, 2)))


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match='shape mismatch'):
        M.sad(np.zeros((2, 2)), np.zeros((2, 3)), unknown((2, 3)))


def test_empty_unknown_region_scores_zero():
    trimap = np.zeros((4, 4), np.uint8)
    pred, true = np.ones((4, 4)), np.zeros((4, 4))
    assert M.sad(pred, true, trimap) == 0
    assert M.mse(pred, true, trimap) == 0
    assert M.gradient_error(pred, true, trimap) == 0
    assert M.connectivity_error(pred, true, trimap) == 0


def test_fg_mse_hand_computed():
    true_pha = np.array([[0.0, 1.0], [0.5, 1.0]])
    true_fgr = np.zeros((2, 2, 3))
    pred_fgr = np.ones((2, 2, 3))
    pred_fgr[0, 1, 2] = 0.5  # one channel of one visible pixel is closer
    # Pixel (0, 0) has alpha 0, so it is zeroed in both and does not count.
    # R, G: errors 1, 1, 1 over 4 unknown pixels -> 3/4; B: 0.25 + 1 + 1 -> 2.25/4.
    expected = np.mean([3 / 4, 3 / 4, 2.25 / 4])
    assert M.fg_mse(pred_fgr, true_fgr, true_pha, unknown((2, 2))) == pytest.approx(expected)


# ------------------------------------------------------------------------ gradient


def matlab_gaussgradient_kernel(sigma=1.4, epsilon=1e-2):
    """gaussgradient.m's kernel built entry by entry, as the MATLAB loops do."""
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * epsilon)))
    size = 2 * half + 1

    def gauss(x):
        return math.exp(-x ** 2 / (2 * sigma ** 2)) / (sigma * math.sqrt(2 * math.pi))

    hx = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            hx[i, j] = gauss(i - half) * (-(j - half) * gauss(j - half) / sigma ** 2)
    return hx / math.sqrt((np.abs(hx) * np.abs(hx)).sum())


def conv2_replicate(img, kernel):
    """imfilter(img, kernel, 'replicate', 'conv') by explicit padding and summation."""
    half = kernel.shape[0] // 2
    padded = np.pad(img, half, mode='edge')
    out = np.zeros_like(img, dtype=np.float64)
    h, w = img.shape
    for a in range(kernel.shape[0]):
        for b in range(kernel.shape[1]):
            # convolution: out(p) = sum_k kernel(k) * img(p - k)
            out += kernel[a, b] * padded[2 * half - a:2 * half - a + h, 2 * half - b:2 * half - b + w]
    return out


def naive_gradient_error(pred, true, trimap):
    def norm(x):
        return (x - x.min()) / (x.max() - x.min()) if x.max() > x.min() else x
    hx = matlab_gaussgradient_kernel()
    amps = []
    for img in (norm(pred), norm(true)):
        gx, gy = conv2_replicate(img, hx), conv2_replicate(img, hx.T)
        amps.append(np.sqrt(gx ** 2 + gy ** 2))
    return ((amps[0] - amps[1]) ** 2)[trimap == 128].sum()


def test_gaussgradient_kernel_matches_matlab_construction():
    kernel = M.gaussgradient_kernel(1.4)
    assert kernel.shape == (9, 9)  # halfsize = ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) 1.4 0.01))) = 4
    np.testing.assert_allclose(kernel, matlab_gaussgradient_kernel(), atol=1e-15)
    assert (kernel ** 2).sum() == pytest.approx(1.0)


def test_gradient_of_a_ramp_hand_computed():
    # pred: horizontal ramp 0..1; target: constant (zero gradient). Away from the border
    # the x-gradient of a ramp of slope s is s * sum_x x^2 g(x) / ||x g|| * sum_y g(y) / ||g||
    # and the y-gradient is 0, so the error is that value squared per unknown pixel.
    h, w = 12, 21
    pred = np.tile(np.arange(w) / (w - 1), (h, 1))
    true = np.zeros((h, w))
    x = np.arange(-4, 5, dtype=np.float64)
    g = np.exp(-x ** 2 / (2 * 1.4 ** 2))
    gx = (1 / (w - 1)) * (x ** 2 * g).sum() / np.linalg.norm(x * g) * g.sum() / np.linalg.norm(g)
    trimap = np.zeros((h, w), np.uint8)
    trimap[4:h - 4, 4:w - 4] = 128  # interior only: no border replication involved
    n = trimap.astype(bool).sum()
    assert M.gradient_error(pred, true, trimap) == pytest.approx(n * gx ** 2, rel=1e-12)
    gxs, gys = M.gaussian_gradient(pred)
    assert gxs[6, 10] == pytest.approx(gx)  # positive for an increasing ramp, as MATLAB's 'conv'
    assert gys[6, 10] == pytest.approx(0, abs=1e-15)


def test_gradient_matches_naive_2d_convolution_with_replicate_border():
    rng = np.random.RandomState(3)
    for shape in [(13, 17), (8, 9), (20, 6)]:
        pred = rng.randint(0, 256, shape).astype(np.uint8)
        true = rng.randint(0, 256, shape).astype(np.uint8)
        trimap = rng.choice(np.array([0, 128, 255], np.uint8), size=shape)
        expected = naive_gradient_error(pred / 255.0, true / 255.0, trimap)
        assert M.gradient_error(pred, true, trimap) == pytest.approx(expected, rel=1e-10)


def test_gradient_is_scale_invariant_and_constant_maps_have_no_gradient():
    rng = np.random.RandomState(0)
    pred = rng.rand(10, 10)
    true = np.full((10, 10), 0.7)
    trimap = unknown((10, 10))
    # mat2gray: a map and an affine copy of it give the same normalised map
    assert M.gradient_error(pred * 0.5 + 0.2, true, trimap) == pytest.approx(
        M.gradient_error(pred, true, trimap))
    assert M.gradient_error(true, true * 0.3, trimap) == 0


# -------------------------------------------------------------------- connectivity


def flood_fill_largest(binary):
    """Largest 4-connected component by BFS; ties go to the component met first in
    column-major order (MATLAB's bwconncomp order)."""
    h, w = binary.shape
    seen = np.zeros_like(binary, dtype=bool)
    best = None
    for c in range(w):
        for r in range(h):
            if binary[r, c] and not seen[r, c]:
                comp, queue = [], deque([(r, c)])
                seen[r, c] = True
                while queue:
                    y, x = queue.popleft()
                    comp.append((y, x))
                    for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                        if 0 <= ny < h and 0 <= nx < w and binary[ny, nx] and not seen[ny, nx]:
                            seen[ny, nx] = True
                            queue.append((ny, nx))
                if best is None or len(comp) > len(best):
                    best = comp
    omega = np.zeros_like(binary, dtype=bool)
    for y, x in best or []:
        omega[y, x] = True
    return omega


def naive_connectivity_error(pred_u8, true_u8, trimap):
    """compute_connectivity_error.m in integer arithmetic: k/255 >= i/10 <=> 10k >= 255i."""
    pred, true = pred_u8 / 255.0, true_u8 / 255.0
    level = np.full(pred.shape, -1.0)
    for i in range(1, 11):
        omega = flood_fill_largest((10 * pred_u8.astype(int) >= 255 * i) &
                                   (10 * true_u8.astype(int) >= 255 * i))
        level[(level == -1) & ~omega] = (i - 1) / 10
    level[level == -1] = 1
    phi_p = 1 - (pred - level) * ((pred - level) >= 0.15)
    phi_t = 1 - (true - level) * ((true - level) >= 0.15)
    return np.abs(phi_p - phi_t)[trimap == 128].sum()


def test_connectivity_hand_computed_hole():
    # Target fully opaque; the prediction has one pixel of 128/255 in the middle.
    # Thresholds 0.1..0.5 keep all 9 pixels connected; from 0.6 on the centre drops out
    # (the ring of 8 stays 4-connected), so l(centre) = 0.5 and l = 1 elsewhere.
    # centre: d_pred = 0.002 -> phi 1; d_true = 0.5 -> phi 0.5. Error 0.5.
    true = np.full((3, 3), 255, np.uint8)
    pred = true.copy()
    pred[1, 1] = 128
    assert M.connectivity_error(pred, true, unknown((3, 3))) == pytest.approx(0.5)
    trimap = unknown((3, 3))
    trimap[1, 1] = 255  # the only differing pixel is not scored
    assert M.connectivity_error(pred, true, trimap) == 0


def test_connectivity_threshold_ties_count_as_reached():
    # 51/255 is exactly 0.2: it must pass the 0.2 threshold (level 0.2, error 0.8 per
    # pixel); a rounding slip would give level 0.1 and error 0.9.
    pred = np.full((4, 4), 51, np.uint8)
    true = np.full((4, 4), 255, np.uint8)
    assert M.connectivity_error(pred, true, unknown((4, 4))) == pytest.approx(16 * 0.8)


def test_connectivity_disconnected_island():
    # A prediction island cut off from the main body by a 0 column: at threshold 0.1 the
    # island is not in the largest component, so l = 0 there; d = 1 for both maps
    # (phi 0) on the island, and the cut column itself has l = 0, d_pred = 0 -> phi 1,
    # d_true = 1 -> phi 0: error 1 per cut pixel.
    true = np.full((3, 6), 255, np.uint8)
    pred = true.copy()
    pred[:, 4] = 0
    assert M.connectivity_error(pred, true, unknown((3, 6))) == pytest.approx(3.0)
    assert naive_connectivity_error(pred, true, unknown((3, 6))) == pytest.approx(3.0)


def test_connectivity_matches_naive_flood_fill():
    rng = np.random.RandomState(7)
    for trial in range(6):
        shape = (9 + trial, 14 - trial)
        # Blobs with soft edges, so components split at different thresholds.
        true = np.clip(rng.rand(*shape) * 1.6 - 0.3, 0, 1)
        pred = np.clip(true + rng.randn(*shape) * 0.3, 0, 1)
        pred_u8, true_u8 = (pred * 255).round().astype(np.uint8), (true * 255).round().astype(np.uint8)
        trimap = rng.choice(np.array([0, 128, 255], np.uint8), size=shape, p=[0.2, 0.6, 0.2])
        assert M.connectivity_error(pred_u8, true_u8, trimap) == pytest.approx(
            naive_connectivity_error(pred_u8, true_u8, trimap), abs=1e-9)


def test_connectivity_equal_size_tie_uses_column_major_order():
    # Two equal components; MATLAB keeps the first in column-major order (the left one).
    true = np.zeros((4, 5), np.uint8)
    true[0, 0] = true[3, 0] = 255  # not used: they are single pixels
    both = np.zeros((4, 5), bool)
    both[2:4, 0] = True     # left component, column-major first
    both[0:2, 3] = True     # right component, row-major first
    np.testing.assert_array_equal(M._largest_component(both), flood_fill_largest(both))
    assert M._largest_component(both)[2, 0]


# ---------------------------------------------------------------------- compute_all


def test_compute_all_perfect_prediction_is_zero():
    rng = np.random.RandomState(1)
    pha = rng.rand(10, 14).astype(np.float32)
    fgr = rng.rand(10, 14, 3).astype(np.float32)
    trimap = make_trimap(pha)
    result = M.compute_all(pha, pha, trimap, fgr, fgr)
    assert all(result[m] == 0 for m in M.METRIC_NAMES)
    assert result['unknown_pixels'] == 8 * 12  # cropped to multiples of 4, all unknown


def test_compute_all_crops_to_multiples_of_4_and_scales_mse():
    true = np.zeros((6, 7), np.uint8)
    pred = true.copy()
    pred[5, :] = 255  # row 5 and column 6 are cropped away
    pred[:, 6] = 255
    assert M.compute_all(pred, true, unknown((6, 7)))['SAD'] == 0
    pred[0, 0] = 51
    result = M.compute_all(pred, true, unknown((6, 7)))
    assert result['SAD'] == pytest.approx(0.2 / 1000)
    assert result['MSE'] == pytest.approx(0.04 / 16 * 1000)  # 4x4 unknown pixels, x1000
    assert math.isnan(result['FG-MSE'])


def test_compute_all_quantises_floats_to_8_bit():
    true = np.zeros((4, 4))
    pred = np.full((4, 4), 0.1 / 255)  # rounds to level 0
    assert M.compute_all(pred, true, unknown((4, 4)))['SAD'] == 0


# -------------------------------------------------------------------------- trimap


def test_trimap_single_soft_pixel_gives_city_block_diamond():
    alpha = np.zeros((41, 41), np.uint8)
    alpha[20, 20] = 128
    trimap = make_trimap(alpha)
    assert set(np.unique(trimap)) == {0, 128}
    yy, xx = np.mgrid[:41, :41]
    diamond = np.abs(yy - 20) + np.abs(xx - 20) <= 10  # 3x3 ellipse = cross, 10 iterations
    np.testing.assert_array_equal(trimap == 128, diamond)
    assert (trimap == 128).sum() == 2 * 10 * 11 + 1


def test_trimap_thresholds():
    alpha = np.zeros((41, 41), np.uint8)
    alpha[20, 20] = 15  # 15/255 <= 0.06: background
    assert (make_trimap(alpha) == 0).all()
    alpha[20, 20] = 16  # 16/255 > 0.06: unknown
    assert (make_trimap(alpha) == 128).sum() == 221
    full = np.full((41, 41), 245, np.uint8)  # 245/255 >= 0.96: foreground, image border does not erode
    assert (make_trimap(full) == 255).all()
    full[20, 20] = 244  # 244/255 < 0.96: an unknown diamond in the foreground
    trimap = make_trimap(full)
    assert (trimap == 128).sum() == 221 and (trimap == 0).sum() == 0


def test_trimap_hard_edge_band():
    alpha = np.zeros((30, 40), np.uint8)
    alpha[:, 20:] = 255  # a vertical hard edge between columns 19 and 20
    trimap = make_trimap(alpha)
    row = trimap[15]
    # foreground eroded 10 px, background dilated 10 px: columns 10..29 unknown
    np.testing.assert_array_equal(np.nonzero(row == 128)[0], np.arange(10, 30))
    assert (row[:10] == 0).all() and (row[30:] == 255).all()


def test_trimap_accepts_float_alpha():
    alpha = np.zeros((21, 21), np.float32)
    alpha[10, 10] = 0.5
    assert (make_trimap(alpha) == 128).sum() == 221


def test_sad_image_counts_errors_the_trimap_leaves_out():
    """A hole in the definite foreground: the paper's SAD (unknown region) misses it, the
    whole-image SAD counts every pixel of it."""
    true = np.zeros((64, 64))
    true[16:48, 16:48] = 1.0
    true[15, 16:48] = 0.5  # a soft edge for the unknown region
    trimap = np.full((64, 64), 0, np.uint8)
    trimap[16:48, 16:48] = 255
    trimap[14:17, 14:50] = 128
    pred = true.copy()
    pred[24:32, 24:32] = 0.0  # 64 pixels of solid foreground lost
    result = M.compute_all(pred, true, trimap)
    assert result['SAD'] == 0
    assert result['SAD-image'] == pytest.approx(64 / 1000)
    assert M.sad_image(pred, true) == pytest.approx(64 / 1000)
