"""Tests of live matting (predict.py --camera): a generated video file stands in for the camera.

The capture keeps only the newest frame (frames are dropped, never queued, when the reader is
slower than the source); the headless loop mattes, records atomically and reports its frame
rate; bad sources and options fail with one line. Model: the default checkpoint, dygraph.
"""
import os
import time

import cv2
import numpy as np
import pytest

import predict
from test_predict import error_line, scene, video_info, write_video
from utils.live import (BLUR, Backgrounds, FpsMeter, LatestFrameCapture, LiveError, LiveOptions,
                        capture_plate, run_live)
from utils.predict import PredictConfig, PredictError

WEIGHTS = predict.DEFAULT_WEIGHTS
PLATE_FRAMES = 4


@pytest.fixture(scope='module')
def counter_video(tmp_path_factory):
    """60 gray frames 48x64 whose brightness encodes the frame number (4 * index / 255)."""
    frames = [np.full((48, 64, 3), 4 * i / 255, np.float32) for i in range(60)]
    return write_video(str(tmp_path_factory.mktemp('live') / 'counter.mp4'), frames, fps=25)


@pytest.fixture(scope='module')
def camera_video(tmp_path_factory):
    """The empty scene for PLATE_FRAMES frames, then a disc moving across it (64x96, 40 frames)."""
    _, bgr, _ = scene(64, 96, seed=3)
    frames = [bgr] * PLATE_FRAMES + [scene(64, 96, seed=3, shift=i)[0] for i in range(36)]
    return write_video(str(tmp_path_factory.mktemp('live') / 'camera.mp4'), frames, fps=25)


def frame_number(frame):
    return int(round(float(frame.mean()) * 255 / 4))


def test_newest_frame_wins(counter_video):
    """A reader slower than the source gets the newest frame each time; the rest are dropped."""
    capture = LatestFrameCapture(counter_video, fps=200)  # 5 ms per frame
    seqs = []
    try:
        while True:
            got = capture.read(after=seqs[-1] if seqs else 0)
            if got is None:
                break
            seq, _, frame = got
            assert frame.shape == (48, 64, 3) and frame.dtype == np.float32
            # the frame handed out is the seq-th of the file, not an older one waiting in a queue
            assert abs(frame_number(frame) - (seq - 1)) <= 1
            seqs.append(seq)
            time.sleep(0.04)  # the "network": 8 source frames per read
    finally:
        capture.close()
    assert capture.captured == 60
    assert seqs == sorted(set(seqs))
    assert len(seqs) < 30, seqs                       # most frames were dropped ...
    assert max(np.diff(seqs)) >= 3                    # ... in gaps, not queued
    assert seqs[-1] >= 55                             # and the reader kept up with the end


def test_video_file_is_paced_like_a_camera(counter_video):
    capture = LatestFrameCapture(counter_video, fps=100)
    start = time.perf_counter()
    try:
        seq = 0
        while (got := capture.read(after=seq)) is not None:
            seq = got[0]
    finally:
        capture.close()
    assert seq == 60
    assert time.perf_counter() - start >= 59 / 100 * 0.9  # not decoded as fast as possible


def test_plate_is_the_average_of_the_first_frames(counter_video):
    capture = LatestFrameCapture(counter_video, size=(32, 24), fps=100)
    try:
        plate, seq = capture_plate(capture, 5)
    finally:
        capture.close()
    assert plate.shape == (24, 32, 3)  # --resolution resizes frames of another size
    assert seq >= 5
    assert 1 <= float(plate.mean()) * 255 / 4 <= seq - 1


def test_backgrounds_cycle_and_blur_the_plate():
    plate = np.random.default_rng(0).random((40, 60, 3)).astype(np.float32)
    backgrounds = Backgrounds('#ff0000')
    assert backgrounds.specs == ['#ff0000', '120,255,155', BLUR]
    assert np.allclose(backgrounds.target(plate), [1, 0, 0])
    backgrounds.next()
    backgrounds.next()
    blurred = backgrounds.target(plate)
    assert blurred.shape == plate.shape
    assert blurred.std() < plate.std() / 3  # smoothed
    assert abs(blurred.mean() - plate.mean()) < 0.02  # the same scene
    backgrounds.next()
    assert backgrounds.name == '#ff0000'


def test_fps_meter_skips_warm_up():
    meter = FpsMeter(warmup=2)
    for t in [0.0, 3.0, 3.5, 4.0, 4.5, 5.0]:  # a slow first call, then 2 frames/s
        meter.tick(t)
    assert meter.average == pytest.approx(2.0)
    assert 1 / 3 < meter.smoothed < 2  # moving from the slow first interval towards 2


def _config(tmp_path, **values):
    values.setdefault('engine', 'dygraph')
    return PredictConfig(src='camera', bgr=values.pop('bgr', None), weights=WEIGHTS, quiet=True,
                         output_dir=str(tmp_path), **values)


def test_headless_run_drops_frames_and_records(camera_video, tmp_path):
    record = str(tmp_path / 'live.mp4')
    summary = run_live(_config(tmp_path), LiveOptions(
        source=camera_video, headless=True, record=record, plate_frames=PLATE_FRAMES,
        camera_fps=100))  # the camera is faster than the network
    assert summary['captured'] == 40
    assert summary['matted'] >= 2
    assert summary['dropped'] > 0
    assert summary['matted'] + summary['dropped'] <= 40 - summary['plate_frames']
    assert summary['fps'] > 0 and summary['size'] == (96, 64)
    # no lag: every composite is of a frame at most a few network calls old
    assert summary['latency_ms']['max'] < 5000
    assert summary['record'] == record
    fps, count, width, height = video_info(record)
    assert (width, height) == (96, 64)
    assert count == summary['matted']  # one frame per composite, none held or repeated
    # played at the rate frames were matted, in camera time: slower than the camera's 100 fps
    assert fps == pytest.approx(summary['record_fps'], abs=0.01) and 1 <= fps < 100
    cap = cv2.VideoCapture(record)
    ok, frame = cap.read()
    cap.release()
    assert ok
    green = np.array([155, 255, 120])  # BGR of the default target
    corner = frame[:8, -8:].reshape(-1, 3).mean(0)  # background there: the new green
    assert np.abs(corner - green).max() < 40, corner
    assert not [f for f in os.listdir(tmp_path) if f.startswith('.tmp')]


def test_failure_mid_run_leaves_no_recording(camera_video, tmp_path, monkeypatch):
    import utils.live as live
    calls = []

    def failing_infer(*args):
        calls.append(1)
        if len(calls) > 2:
            raise PredictError('disk on fire')
        return real_infer(*args)

    real_infer = live.infer
    monkeypatch.setattr(live, 'infer', failing_infer)
    record = tmp_path / 'live.mp4'
    with pytest.raises(PredictError, match='disk on fire'):
        run_live(_config(tmp_path), LiveOptions(source=camera_video, headless=True, record=str(record),
                                                 plate_frames=PLATE_FRAMES, camera_fps=100))
    assert os.listdir(tmp_path) == []  # neither the file nor a temporary one


def test_plate_image_and_blur_background(camera_video, tmp_path):
    from utils.image_io import write_image
    _, bgr, _ = scene(64, 96, seed=3)
    plate = str(tmp_path / 'plate.png')
    write_image(plate, bgr)
    summary = run_live(_config(tmp_path, bgr=plate, target_bgr='blur'),
                       LiveOptions(source=camera_video, headless=True, max_frames=2,
                                   record=str(tmp_path / 'out.mp4')))
    assert summary['matted'] == 2 and summary['plate_frames'] == 0


def test_command_line_headless(camera_video, tmp_path, capsys):
    out = tmp_path / 'out'
    assert predict.main(['--camera', camera_video, '--headless', '--output-dir', str(out),
                         '--plate-frames', str(PLATE_FRAMES), '--max-frames', '3',
                         '--model-checkpoint', WEIGHTS, '--model-backbone', 'mobilenetv2',
                         '--model-type', 'mattingrefine', '--model-backbone-scale', '0.25',
                         '--model-refine-mode', 'sampling', '--model-refine-sample-pixels', '4000',
                         '--model-refine-threshold', '0.1', '--model-refine-kernel-size', '3',
                         '--resolution', '96', '64', '--device', 'cpu', '--hide-fps',
                         '--engine', 'dygraph']) == 0
    printed = capsys.readouterr().out
    assert '3 frames matted at 96x64' in printed and 'fps' in printed
    assert os.path.isfile(out / 'live.mp4')
    # the recording is kept unless --overwrite
    assert predict.main(['--camera', camera_video, '--headless', '--output-dir', str(out),
                         '--max-frames', '1', '--engine', 'dygraph', '--quiet']) == 1
    assert 'already exists' in error_line(capsys)


@pytest.mark.parametrize('args, code, expected', [
    (['--camera', 'no_such_clip.mp4', '--headless'], 1, 'not a camera index'),
    (['--headless', '--src', 'x.png', '--bgr', 'y.png'], 2, '--headless applies to --camera only'),
    (['--camera', '0', '--src', 'x.mp4', '--headless'], 2, 'two inputs'),
    (['--camera', '0', '--model-type', 'mattingbase', '--headless'], 2, 'runs MattingRefine'),
    (['--camera', '0', '--plate-frames', '0', '--headless'], 2, '--plate-frames must be at least 1'),
])
def test_bad_camera_options(args, code, expected, tmp_path, capsys):
    assert predict.main([*args, '--output-dir', str(tmp_path), '--engine', 'dygraph']) == code
    assert expected in error_line(capsys)


def test_window_needs_a_gui_opencv(camera_video, tmp_path, capsys):
    try:
        cv2.namedWindow('probe')
        cv2.destroyWindow('probe')
        pytest.skip('this OpenCV has a GUI; the window itself is not tested')
    except cv2.error:
        pass
    assert predict.main(['--camera', camera_video, '--output-dir', str(tmp_path), '--engine',
                         'dygraph']) == 2
    assert '--headless' in error_line(capsys)


def test_unreadable_camera(tmp_path):
    bad = tmp_path / 'bad.mp4'
    bad.write_bytes(b'not a video')
    with pytest.raises(LiveError, match='cannot read a frame'):
        LatestFrameCapture(str(bad))
