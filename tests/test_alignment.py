"""Tests of utils/predict/alignment.py (--preprocess-alignment): plates shot from a slightly different
position are warped onto the source frame; featureless plates fall back with a reason."""
import cv2
import numpy as np
import pytest

from utils.predict.alignment import align_background, estimate_homography, warp_background


def textured(rng, h, w):
    """A background with texture at several scales and hard-edged rectangles (corners for ORB)."""
    img = np.zeros((h, w, 3), np.float32)
    for step in (4, 8, 16, 32):
        grid = rng.random((h // step + 2, w // step + 2, 3)).astype(np.float32)
        img += cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC) / 4
    for _ in range(h * w // 1500):
        color = tuple(float(v) for v in rng.random(3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.rectangle(img, (x, y), (x + int(rng.integers(4, 30)), y + int(rng.integers(4, 30))), color, -1)
    return np.clip(img, 0.0, 1.0)


def shifted_scene(h, w, degrees=1.5, shift=(5, -4), seed=1):
    """(src, plate, true background, pha): the plate is the true background rotated and shifted,
    as a second hand-held shot would be; src has a foreground blob over the true background."""
    rng = np.random.default_rng(seed)
    margin = 24
    big = textured(rng, h + 2 * margin, w + 2 * margin)
    true_bg = big[margin:margin + h, margin:margin + w]
    matrix = cv2.getRotationMatrix2D(((w + 2 * margin) / 2, (h + 2 * margin) / 2), degrees, 1.0)
    matrix[:, 2] += shift
    plate = cv2.warpAffine(big, matrix, (w + 2 * margin, h + 2 * margin))[margin:margin + h, margin:margin + w]
    pha = np.zeros((h, w), np.float32)
    cv2.ellipse(pha, (w // 2, h // 2 + h // 4), (w // 6, h // 2), 0, 0, 360, 1.0, -1)
    pha = cv2.GaussianBlur(pha, (5, 5), 1.5)[:, :, None]
    src = pha * np.array([0.8, 0.3, 0.2], np.float32) + (1 - pha) * true_bg
    return src, np.ascontiguousarray(plate), true_bg, pha


@pytest.mark.parametrize('size', [(128, 192), (384, 512)])
def test_aligned_plate_is_closer_to_the_true_background(size):
    src, plate, true_bg, pha = shifted_scene(*size)
    aligned, result = align_background(src, plate)
    assert result.ok, result.reason
    assert result.inliers >= 15
    background = pha[:, :, 0] == 0  # compare where the true background is visible
    before = np.abs(plate - true_bg)[background].mean()
    after = np.abs(aligned - true_bg)[background].mean()
    assert after < 0.25 * before
    assert after < 0.02
    assert aligned.shape == src.shape and aligned.dtype == np.float32


def test_homography_matches_the_applied_motion():
    src, plate, _, _ = shifted_scene(256, 320, degrees=1.0, shift=(6, 3))
    result = estimate_homography(src, plate)
    assert result.ok
    # The plate was made by rotating/shifting the background, so mapping it back is the
    # inverse motion: check where the plate's centre lands.
    centre = np.float32([[[160, 128]]])
    moved = cv2.perspectiveTransform(centre, result.homography)[0, 0]
    matrix = cv2.getRotationMatrix2D((320 / 2 + 24, 256 / 2 + 24), 1.0, 1.0)
    matrix[:, 2] += (6, 3)
    inverse = cv2.invertAffineTransform(matrix)
    expected = inverse @ np.array([160 + 24, 128 + 24, 1.0]) - 24
    assert np.allclose(moved, expected, atol=1.0)


def test_featureless_plate_falls_back_with_a_reason():
    src, _, _, _ = shifted_scene(96, 128)
    flat = np.full_like(src, 0.5)
    aligned, result = align_background(src, flat)
    assert not result.ok
    assert 'features' in result.reason
    assert aligned is flat  # unchanged plate


def test_unrelated_plate_is_not_warped():
    src, _, _, _ = shifted_scene(128, 192, seed=1)
    other = textured(np.random.default_rng(99), 128, 192)
    aligned, result = align_background(src, other)
    assert not result.ok and result.reason
    assert aligned is other


def test_identical_plate_gives_near_identity():
    src, _, true_bg, _ = shifted_scene(128, 192, degrees=0.0, shift=(0, 0))
    result = estimate_homography(src, true_bg)
    assert result.ok
    corners = np.float32([[[0, 0], [191, 0], [191, 127], [0, 127]]])
    moved = cv2.perspectiveTransform(corners, result.homography)
    assert np.abs(moved - corners).max() < 1.0  # pixels


def test_uncovered_pixels_come_from_the_source():
    src = np.random.default_rng(0).random((40, 60, 3)).astype(np.float32)
    plate = np.zeros_like(src)
    shift = np.float64([[1, 0, 10], [0, 1, 0], [0, 0, 1]])  # plate moved 10 px to the right
    warped = warp_background(src, plate, shift)
    assert np.array_equal(warped[:, :10], src[:, :10])  # not covered by the plate
    assert np.all(warped[:, 11:] == 0)
