"""The difference-key baseline keys what differs from the plate, and nothing else."""
import numpy as np
import pytest

from utils.evaluation.baseline import difference_key, main
from utils.image_io import read_image, write_image


def _scene(rng):
    bgr = rng.random((40, 60, 3)).astype(np.float32) * 0.5
    src = bgr.copy()
    src[10:30, 20:40] = 0.95  # an opaque square subject
    return src, bgr


def test_subject_keyed_plate_not():
    src, bgr = _scene(np.random.default_rng(0))
    pha = difference_key(src, bgr, feather_sigma=0)
    assert pha[15:25, 25:35].min() > 0.99
    assert pha[:5].max() == 0.0
    assert pha.dtype == np.float32 and pha.shape == (40, 60)


def test_noise_below_the_low_threshold_is_not_keyed():
    rng = np.random.default_rng(1)
    bgr = rng.random((32, 32, 3)).astype(np.float32)
    src = np.clip(bgr + rng.normal(0, 0.005, bgr.shape), 0, 1).astype(np.float32)
    assert difference_key(src, bgr).max() == 0.0


def test_size_mismatch():
    with pytest.raises(ValueError, match='differ in size'):
        difference_key(np.zeros((4, 4, 3), np.float32), np.zeros((4, 5, 3), np.float32))


def test_cli_writes_pha_and_fgr(tmp_path):
    src, bgr = _scene(np.random.default_rng(2))
    write_image(str(tmp_path / 'src' / 'a.png'), src)
    write_image(str(tmp_path / 'bgr' / 'a.png'), bgr)
    assert main([str(tmp_path / 'src'), str(tmp_path / 'bgr'), str(tmp_path / 'out')]) == 0
    pha = read_image(str(tmp_path / 'out' / 'pha' / 'a.png'), mode='gray')
    assert pha[20, 30] > 0.99 and pha[0, 0] == 0.0
    assert (tmp_path / 'out' / 'fgr' / 'a.png').exists()
    assert main([str(tmp_path / 'bgr'), str(tmp_path / 'nope'), str(tmp_path / 'o2')]) == 1
