"""Shared image reading and atomic writing."""
import os
import stat

import cv2
import numpy as np
import pytest

from utils.image_io import ImageReadError, atomic_write_bytes, read_image, write_image


def test_atomic_write_gives_normal_permissions(tmp_path):
    path = tmp_path / 'a.bin'
    atomic_write_bytes(str(path), b'data')
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    assert os.listdir(tmp_path) == ['a.bin']


def test_round_trip_and_conversions(tmp_path):
    rgb = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    write_image(str(tmp_path / 'c.png'), rgb)
    np.testing.assert_allclose(read_image(str(tmp_path / 'c.png')), rgb, atol=1 / 255)
    gray16 = (np.arange(35, dtype=np.uint16).reshape(5, 7) * 1000)
    cv2.imwrite(str(tmp_path / 'g16.png'), gray16)
    img = read_image(str(tmp_path / 'g16.png'))
    assert img.shape == (5, 7, 3) and abs(img[4, 6, 0] - 34000 / 65535) < 1e-6
    rgba = np.dstack([rgb, np.full((5, 7), 0.5, np.float32)])
    write_image(str(tmp_path / 'a.png'), rgba)
    assert read_image(str(tmp_path / 'a.png'), mode='rgba').shape == (5, 7, 4)
    assert read_image(str(tmp_path / 'a.png')).shape == (5, 7, 3)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(ImageReadError, match='no such file'):
        read_image(str(tmp_path / 'missing.png'))
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not an image')
    with pytest.raises(ImageReadError, match='bad.png: not a readable image'):
        read_image(str(bad))
