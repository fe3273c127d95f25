"""utils.video_io.VideoFileWriter: H.264 (+ the source's audio) and VP9 with alpha through the
ffmpeg that imageio-ffmpeg ships, OpenCV's mp4v as the default and the fallback."""
import os
import re
import stat
import subprocess

import cv2
import numpy as np
import pytest

import utils.video_io as video_io
from utils.video_io import VideoFileWriter, VideoWriteError, default_video_codec, has_audio

imageio_ffmpeg = pytest.importorskip('imageio_ffmpeg')
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def _probe(path):
    """ffmpeg's description of the file's streams."""
    return subprocess.run([FFMPEG, '-hide_banner', '-i', str(path)], capture_output=True,
                          text=True).stderr


def _frames(n, height, width, seed=0):
    rng = np.random.default_rng(seed)
    # flat colours: a lossy codec keeps them within a few levels
    return [np.full((height, width, 3), rng.random(3), np.float32) for _ in range(n)]


def _decode(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame[:, :, ::-1].astype(np.float32) / 255)
    capture.release()
    return frames


@pytest.fixture(scope='module')
def source_with_audio(tmp_path_factory):
    """A 2 s clip with a 440 Hz tone, made with the bundled ffmpeg."""
    path = str(tmp_path_factory.mktemp('src') / 'tone.mp4')
    subprocess.run([FFMPEG, '-y', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10',
                    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-t', '2',
                    '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', path],
                   check=True)
    return path


def test_h264_is_browser_playable_and_complete(tmp_path):
    path = tmp_path / 'com.mp4'
    frames = _frames(7, 47, 63)
    writer = VideoFileWriter(str(path), 10, (63, 47), codec='h264')
    for frame in frames:
        writer.write(frame)
    writer.close()
    assert writer.codec == 'h264' and writer.notes == [] and writer.padded
    info = _probe(path)
    assert re.search(r'Video: h264 .*yuv420p', info), info
    assert 'Audio:' not in info
    decoded = _decode(path)
    assert len(decoded) == len(frames)
    assert decoded[0].shape == (48, 64, 3)  # padded to even sizes, not cropped
    for got, want in zip(decoded, frames):
        assert np.abs(got[:47, :63] - want).mean() < 3 / 255
    assert os.stat(path).st_mode & stat.S_IRGRP  # not mkstemp's private 0600
    assert [p.name for p in tmp_path.iterdir()] == ['com.mp4']  # no temporary left


def test_h264_keeps_the_audio_of_the_source(tmp_path, source_with_audio):
    assert has_audio(source_with_audio)
    path = tmp_path / 'com.mp4'
    writer = VideoFileWriter(str(path), 10, (64, 48), codec='h264', audio_from=source_with_audio)
    for frame in _frames(15, 48, 64):
        writer.write(frame)
    writer.close()
    info = _probe(path)
    assert re.search(r'Audio: aac', info), info
    assert len(_decode(path)) == 15
    duration = re.search(r'Duration: (\d+):(\d+):([\d.]+)', info).groups()
    assert float(duration[2]) < 1.9  # cut to the video's 1.5 s, not the source's 2 s


def test_source_without_audio_gives_video_only(tmp_path):
    silent = str(tmp_path / 'silent.mp4')
    writer = VideoFileWriter(silent, 10, (32, 32), codec='h264')
    writer.write(np.zeros((32, 32, 3), np.float32))
    writer.close()
    assert not has_audio(silent)
    out = tmp_path / 'out.mp4'
    writer = VideoFileWriter(str(out), 10, (32, 32), codec='h264', audio_from=silent)
    writer.write(np.zeros((32, 32, 3), np.float32))
    writer.close()
    assert writer.notes == [] and 'Audio:' not in _probe(out)


def test_vp9_alpha_keeps_the_matte(tmp_path):
    path = tmp_path / 'fgr.webm'
    alpha = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (48, 1))
    rgba = np.dstack([np.full((48, 64, 3), 0.5, np.float32), alpha])
    writer = VideoFileWriter(str(path), 10, (64, 48), codec='vp9-alpha')
    for _ in range(3):
        writer.write(rgba)
    writer.close()
    assert 'alpha_mode' in _probe(path)
    # FFmpeg's native VP9 decoder drops alpha; libvpx's keeps it
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt='rgba', bpp=4,
                                        input_params=['-c:v', 'libvpx-vp9'])
    next(reader)  # metadata
    frames = [np.frombuffer(data, np.uint8).reshape(48, 64, 4) for data in reader]
    assert len(frames) == 3
    assert np.abs(frames[0][..., 3] / 255 - alpha).max() < 0.05
    with pytest.raises(VideoWriteError, match='webm'):
        VideoFileWriter(str(tmp_path / 'fgr.mp4'), 10, (64, 48), codec='vp9-alpha')


def test_default_stays_opencv_mp4v(tmp_path):
    path = tmp_path / 'com.mp4'
    writer = VideoFileWriter(str(path), 10, (32, 32))
    writer.write(np.zeros((32, 32, 3), np.float32))
    writer.close()
    assert writer.codec == 'mp4v' and 'Video: mpeg4' in _probe(path)
    assert default_video_codec() == 'h264'


def test_without_imageio_ffmpeg_h264_falls_back_to_mp4v(tmp_path, monkeypatch, source_with_audio):
    monkeypatch.setattr(video_io, '_imageio_ffmpeg', lambda: None)
    assert default_video_codec() == 'mp4v'
    path = tmp_path / 'com.mp4'
    writer = VideoFileWriter(str(path), 10, (32, 32), codec='h264', audio_from=source_with_audio)
    writer.write(np.zeros((32, 32, 3), np.float32))
    writer.close()
    assert writer.codec == 'mp4v' and 'Video: mpeg4' in _probe(path)
    assert any('imageio-ffmpeg' in note for note in writer.notes)
    assert any('audio' in note for note in writer.notes)
    with pytest.raises(VideoWriteError, match='imageio-ffmpeg'):
        VideoFileWriter(str(tmp_path / 'a.webm'), 10, (32, 32), codec='vp9-alpha')


def test_close_without_commit_leaves_nothing(tmp_path):
    writer = VideoFileWriter(str(tmp_path / 'com.mp4'), 10, (32, 32), codec='h264')
    writer.write(np.zeros((32, 32, 3), np.float32))
    writer.close(commit=False)
    assert list(tmp_path.iterdir()) == []
