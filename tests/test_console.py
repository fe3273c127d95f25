"""The CLIs print the project's own one-line errors, without third-party library noise first.

Noise silenced by utils.library_logging (or avoided): Paddle's `No ccache found` warning at
import, OpenCV's `[ WARN:...]` log, libpng's `libpng error: ...` and FFmpeg's `moov atom not
found` before our clean errors for corrupt PNGs and truncated videos.
"""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT

NOISE = ('No ccache found', 'WARN', 'libpng', 'moov atom', 'PIR not support', 'Traceback')


def _run(*args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def _assert_quiet(stderr):
    """No library noise; the one line left (progress bars aside) is ours -> that line."""
    for noise in NOISE:
        assert noise not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and '%|' not in line]
    assert len(lines) == 1 and lines[0].startswith('error: '), stderr
    return lines[0]


@pytest.fixture
def plate(tmp_path):
    path = str(tmp_path / 'plate.png')
    cv2.imwrite(path, np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    return path


def test_importing_the_packages_prints_nothing():
    for first in ('dataset', 'utils'):
        done = _run('-c', f'import {first}, model, paddle, cv2, model.model')
        assert done.returncode == 0 and done.stderr == '', done.stderr


def test_model_package_imports_neither_utils_nor_paddle():
    """model/ depends on nothing of utils/; its users import utils (the quieting) first."""
    done = _run('-c', 'import sys, model, model.options; '
                      'print(sorted(m for m in ("utils", "paddle", "cv2") if m in sys.modules))')
    assert done.returncode == 0 and done.stderr == '' and done.stdout.strip() == '[]', done


@pytest.mark.parametrize('damage', ['truncated', 'crc'])
def test_corrupt_png_gets_one_clean_line(damage, tmp_path, plate):
    data = bytearray(open(plate, 'rb').read())
    if damage == 'truncated':
        data = data[:len(data) // 2]
    else:
        data[60:80] = bytes(20)
    src = tmp_path / 'src.png'
    src.write_bytes(bytes(data))
    done = _run('predict.py', '--src', str(src), '--bgr', plate, '--engine', 'dygraph',
                '--output-dir', str(tmp_path / 'out'))
    assert done.returncode != 0
    assert 'corrupt PNG' in _assert_quiet(done.stderr)


def test_truncated_video_gets_one_clean_line(tmp_path, plate):
    video = str(tmp_path / 'clip.mp4')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 10, (64, 64))
    for _ in range(10):
        writer.write(cv2.imread(plate))
    writer.release()
    data = open(video, 'rb').read()
    with open(video, 'wb') as f:
        f.write(data[:len(data) // 2])
    done = _run('predict.py', '--src', video, '--bgr', plate, '--engine', 'dygraph',
                '--output-dir', str(tmp_path / 'out'))
    assert done.returncode != 0
    assert 'not a readable video' in _assert_quiet(done.stderr)


def test_user_settings_win(monkeypatch):
    """Every default is only a default: a user debugging OpenCV sees its log again."""
    env = dict(os.environ, OPENCV_LOG_LEVEL='INFO')
    done = subprocess.run([sys.executable, '-c', 'import utils, os; print(os.environ["OPENCV_LOG_LEVEL"])'],
                          cwd=ROOT, capture_output=True, text=True, env=env)
    assert done.stdout.strip() == 'INFO'
