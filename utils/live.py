"""Live matting: a camera, a stream or a video file standing in for a camera, matted frame by frame.

    config = PredictConfig(src='0', bgr=None, weights='model.pdparams')   # the model options
    summary = run_live(config, LiveOptions(source='0', headless=True, record='live.mp4'))

The pieces, each usable alone:

- `LatestFrameCapture` reads the source in a thread into a one-slot buffer: when the network
  is slower than the camera the newest frame replaces the waiting one, so frames are dropped,
  never queued, and the picture lags the camera by at most one network call. A video file is
  paced at its frame rate (or `fps`), as a camera would deliver it.
- The plate: a given image (`--bgr`), the average of the first N frames (less sensor noise
  than one frame), or the frame shown when B is pressed in the window.
- `Backgrounds`: the new background, switchable with N in the window: `--target-bgr` (a
  colour or an image), the default green, and a blur of the real background (the plate).
- `FpsMeter`; the window (OpenCV highgui: B plate, N background, A alignment, Q quit); the
  recorder (`--record`: an mp4 of the composites, at the rate they were matted, written
  atomically).

Matting itself is predict's: `load_engine` (the fastest installed engine on the CPU, else dygraph)
and `infer` on one frame at a time (batching would add latency).
"""
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from utils.image_io import read_image, to_uint8
from utils.predict.compose import DEFAULT_TARGET_BGR, resize_image
from utils.predict.inputs import Aligner, Item, fit_plate
from utils.predict.options import FALLBACK_FPS, PredictError, UsageError, warn_to_stderr
from utils.predict.run import infer, load_engine
from utils.predict.targets import TargetBackground
from utils.video_io import ThreadedWriter, VideoFileWriter, from_opencv

# Frames averaged into the plate when no window asks for a key press (--plate-frames).
DEFAULT_PLATE_FRAMES = 10
# The new background that blurs the real one (--target-bgr blur).
BLUR = 'blur'
# Seconds to wait for a camera's next frame before reporting it as stalled.
FRAME_TIMEOUT = 10.0
WINDOW = 'BackgroundMattingV2 live (B: plate, N: background, A: alignment, Q: quit)'


class LiveError(PredictError):
    """A camera or stream that cannot be opened or read; one line naming it and the fix."""


@dataclass
class LiveOptions:
    """The camera mode's options (predict.py --camera ...); the model options are in PredictConfig."""
    source: str                           # device index, stream URL, or video file
    headless: bool = False                # no window; record the composites instead
    record: Optional[str] = None          # mp4 of the composites (headless default: <output-dir>/live.mp4)
    plate_frames: Optional[int] = None    # average the first N frames (default: B key, headless 10)
    max_frames: Optional[int] = None      # stop after N matted frames
    camera_fps: Optional[float] = None    # pace of a video file standing in for a camera
    show_fps: bool = True


def parse_source(text):
    """'0' -> camera index 0; a URL or an existing file stays a string; else a LiveError."""
    text = str(text).strip()
    if text.isdigit():
        return int(text)
    if '://' in text or os.path.isfile(text):
        return text
    raise LiveError(f'{text}: not a camera index, a stream URL (rtsp://, http://, ...) or an '
                    f'existing video file; check --camera')


# ---------------------------------------------------------------------------------------------
# Capture
# ---------------------------------------------------------------------------------------------

class LatestFrameCapture:
    """Read a camera/stream/file in a background thread, keeping only the newest frame.

    Args:
        source: camera index, stream URL or video file (see parse_source).
        size: (W, H) to ask the camera for; frames of another size are resized to it.
        fps: pace of a video file (default: its own frame rate; cameras pace themselves).
    `read(after)` returns (seq, timestamp, frame) for the newest frame with seq > after, frame
    float32 RGB (H, W, 3); None once the source has ended. `captured` counts frames read.
    """

    def __init__(self, source, size=None, fps=None):
        self.source = parse_source(source)
        self.size = tuple(size) if size else None
        self._capture = cv2.VideoCapture(self.source)
        if self.size and isinstance(self.source, int):
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        # A camera's own buffer would hand out stale frames; ask for the smallest.
        self._capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        ok, frame = self._capture.read() if self._capture.isOpened() else (False, None)
        if not ok or frame is None:
            self._capture.release()
            raise LiveError(f'{source}: cannot read a frame (no such camera, stream down, or an '
                            f'unreadable video); check --camera')
        reported = self._capture.get(cv2.CAP_PROP_FPS)
        self.is_file = isinstance(self.source, str) and os.path.isfile(self.source)
        self.fps = fps or (float(reported) if reported and np.isfinite(reported) and reported > 0
                           else None)
        self._pace = self.fps if self.is_file else None
        self._lock = threading.Condition()
        self._frame = None
        self._seq = 0
        self._stamp = 0.0
        self._ended = False
        self._stop = threading.Event()
        self.captured = 0
        self._store(frame)
        self.height, self.width = self._convert(frame).shape[:2]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _convert(self, frame):
        frame = from_opencv(frame)
        if self.size and (frame.shape[1], frame.shape[0]) != self.size:
            frame = resize_image(frame, self.size)
        return frame

    def _store(self, frame):
        # Kept as decoded; only the frames read are converted (most are dropped).
        with self._lock:
            self._frame, self._stamp = frame, time.perf_counter()
            self._seq += 1
            self.captured = self._seq
            self._lock.notify_all()

    def _run(self):
        start = time.perf_counter()
        try:
            while not self._stop.is_set():
                if self._pace:
                    delay = start + self._seq / self._pace - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                ok, frame = self._capture.read()
                if not ok or frame is None:
                    break
                self._store(frame)
        finally:
            self._capture.release()
            with self._lock:
                self._ended = True
                self._lock.notify_all()

    def read(self, after=0, timeout=FRAME_TIMEOUT):
        """The newest frame newer than `after`: (seq, timestamp, frame), or None at the end."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._seq > after or self._ended, timeout):
                raise LiveError(f'{self.source}: no frame for {timeout:g} s; check the camera '
                                f'or stream')
            if self._seq <= after:
                return None
            seq, stamp, frame = self._seq, self._stamp, self._frame
        return seq, stamp, self._convert(frame)

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)


def capture_plate(capture, frames, after=0):
    """The average of the next `frames` frames: (plate, seq of the last one)."""
    total, seq = None, after
    for _ in range(frames):
        got = capture.read(after=seq)
        if got is None:
            break
        seq, _, frame = got
        total = frame.astype(np.float64) if total is None else total + frame
    if total is None:
        raise LiveError(f'{capture.source}: ended before a plate could be captured')
    count = min(frames, seq - after)
    return (total / max(count, 1)).astype(np.float32), seq


# ---------------------------------------------------------------------------------------------
# Backgrounds, frame rate, display
# ---------------------------------------------------------------------------------------------

class Backgrounds:
    """The new backgrounds to cycle through: `spec` (colour or image; default green), the
    default green, and a blur of the real background (the plate)."""

    def __init__(self, spec):
        default = ','.join(map(str, DEFAULT_TARGET_BGR))
        specs = [spec or default, default, BLUR]
        self.specs = list(dict.fromkeys(specs))
        self._targets = {s: None if s == BLUR else TargetBackground(s, 'images') for s in self.specs}
        self.index = 0
        self._blurred = (None, None)

    @property
    def name(self):
        return self.specs[self.index]

    def next(self):
        self.index = (self.index + 1) % len(self.specs)

    def target(self, plate):
        """The background for frames of the plate's size: (H, W, 3) image or (3,) colour."""
        if self.name != BLUR:
            return self._targets[self.name].for_image(plate.shape[1], plate.shape[0])
        if self._blurred[0] is not plate:  # blurred once per plate
            sigma = max(plate.shape[:2]) / 60.0
            self._blurred = (plate, cv2.GaussianBlur(plate, (0, 0), sigma))
        return self._blurred[1]


class FpsMeter:
    """Frames per second: `smoothed` (exponential average of recent intervals, what the window
    shows) and `average` (all frames after the first `warmup`, whose calls are slower while
    the engine settles)."""

    def __init__(self, smoothing=0.7, warmup=3):
        self.smoothing = smoothing
        self.warmup = warmup
        self.smoothed = 0.0
        self.count = 0
        self._first = []  # the first warmup + 1 ticks
        self._last = None

    def tick(self, now=None):
        now = time.perf_counter() if now is None else now
        if self._last is not None:
            rate = 1.0 / max(now - self._last, 1e-9)
            self.smoothed = rate if self.count == 1 else (
                self.smoothing * self.smoothed + (1 - self.smoothing) * rate)
        if len(self._first) <= self.warmup:
            self._first.append(now)
        self._last = now
        self.count += 1

    @property
    def average(self):
        """Frames per second after warm-up (all frames when there are too few)."""
        if self.count < 2:
            return 0.0
        skip = min(self.warmup, self.count - 2)
        return (self.count - 1 - skip) / max(self._last - self._first[skip], 1e-9)


def _annotate(image_bgr8, lines):
    for i, line in enumerate(lines):
        y = 24 + 22 * i
        cv2.putText(image_bgr8, line, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(image_bgr8, line, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return image_bgr8


class Window:
    """The OpenCV window; fails at once, with the fix, on an OpenCV built without GUI."""

    def __init__(self):
        try:
            cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise UsageError('this OpenCV has no window support (opencv-python-headless); pass '
                             '--headless (composites go to --record), or pip install '
                             'opencv-python') from None

    def show(self, rgb, lines):
        """Show a float RGB image with text; returns the key pressed (lower-case) or ''."""
        cv2.imshow(WINDOW, _annotate(np.ascontiguousarray(to_uint8(rgb)[:, :, ::-1]), lines))
        key = cv2.waitKey(1) & 0xFF
        return chr(key).lower() if key != 0xFF else ''

    def close(self):
        cv2.destroyWindow(WINDOW)


class Recorder:
    """The composites as an mp4, one frame each, encoded in a thread and renamed into place by
    close(commit).

    The file's frame rate is the rate at which frames were matted, in camera time (the camera
    rate divided by the mean gap between matted frames over the first `rate_frames`), so that
    the recording plays at about real speed without holding frames (re-encoding a held 720p
    composite ten times would take the CPU the network needs). The first frames wait in
    memory until that rate is known.
    """

    def __init__(self, path, camera_fps, size, rate_frames=8):
        self.path, self.camera_fps, self.size = path, camera_fps, size
        self.rate_frames = rate_frames
        self.fps = None
        self.written = 0
        self._pending, self._gaps = [], []
        self._file = self._writer = None

    def _open(self):
        gap = float(np.mean(self._gaps)) if self._gaps else 1.0
        self.fps = round(self.camera_fps / max(gap, 1.0), 3)
        self._file = VideoFileWriter(self.path, self.fps, self.size)
        self._writer = ThreadedWriter(self._file.write, depth=2)
        for frame in self._pending:
            self._writer.submit(frame)
        self._pending = []

    def add(self, frame_uint8, gap):
        """A composite, `gap` camera frames after the previous one."""
        self.written += 1
        if self._writer is not None:
            self._writer.submit(frame_uint8)
            return
        self._pending.append(frame_uint8)
        self._gaps.append(gap)
        if len(self._pending) >= self.rate_frames:
            self._open()

    def close(self, commit):
        if commit and self._writer is None and self._pending:
            self._open()
        if self._writer is None:
            return
        try:
            self._writer.finish(raise_errors=commit)
        finally:
            self._file.close(commit=commit)


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------

def check_options(options, config):
    """Option checks before anything opens; returns the recording path (or None)."""
    if options.plate_frames is not None and options.plate_frames < 1:
        raise UsageError('--plate-frames must be at least 1')
    if options.max_frames is not None and options.max_frames < 1:
        raise UsageError('--max-frames must be at least 1')
    if options.camera_fps is not None and options.camera_fps <= 0:
        raise UsageError('--camera-fps must be positive')
    record = options.record or (os.path.join(config.output_dir, 'live.mp4') if options.headless else None)
    if record and os.path.exists(record) and not config.overwrite:
        raise PredictError(f'{record} already exists; pass --overwrite to replace it, or choose '
                           f'another --record')
    return record


def run_live(config, options):
    """Matte a live source until it ends, `max_frames` are matted, Q is pressed or Ctrl+C.

    Args:
        config: PredictConfig with the model options (weights, engine, backbone_scale, ...),
            target_bgr, preprocess_alignment, resize (the camera resolution), bgr (a plate
            image, optional), output_dir, overwrite, quiet, warn.
        options: LiveOptions.
    Returns: dict with captured, matted and dropped frame counts, seconds, fps (matted
        frames per second after the first), latency_ms (median and max from capture to
        composite), size (W, H) and record (the file written, or None).
    """
    warn = config.warn or warn_to_stderr
    record = check_options(options, config)
    backgrounds = Backgrounds(config.target_bgr)
    window = None if options.headless else Window()
    plate = read_image(config.bgr) if config.bgr else None
    engine = load_engine(config, warn)
    aligner = Aligner(warn, per_item_warnings=False) if config.preprocess_alignment else None
    capture = LatestFrameCapture(options.source, config.resize, options.camera_fps)
    recorder = None
    meter = FpsMeter()
    latencies = []
    seq = matted_seq = 0
    plate_seqs = 0
    interrupted = False
    try:
        if plate is not None:
            plate = fit_plate(capture_frame_like(capture), plate, str(options.source), config.bgr,
                               config.resize_bgr)
        elif options.headless or options.plate_frames:
            plate, seq = capture_plate(capture, options.plate_frames or DEFAULT_PLATE_FRAMES)
            plate_seqs = seq
        if record:
            recorder = Recorder(record, capture.fps or FALLBACK_FPS, (capture.width, capture.height))
        from tqdm import tqdm
        progress = tqdm(total=options.max_frames, unit='frame', disable=config.quiet or not options.headless,
                        dynamic_ncols=True, file=sys.stderr)
        with progress:
            while options.max_frames is None or meter.count < options.max_frames:
                got = capture.read(after=seq)
                if got is None:
                    break
                seq, stamp, frame = got
                if plate is None:  # waiting for B
                    key = window.show(frame, ['Step out of the picture and press B to capture '
                                              'the plate', 'Q: quit'])
                    if key == 'b':
                        plate, plate_seqs = frame.copy(), seq
                    elif key in ('q', '\x1b'):
                        break
                    continue
                bgr = aligner(frame, plate, f'frame {seq}') if aligner else plate
                item = Item(seq, f'frame {seq}', frame, bgr, backgrounds.target(plate))
                composite = infer(engine, [item], ['new'])[0]['new']
                now = time.perf_counter()
                meter.tick(now)
                latencies.append(now - stamp)
                if recorder:
                    recorder.add(to_uint8(composite), seq - max(matted_seq, plate_seqs) if matted_seq
                                 else 1)
                matted_seq = seq
                progress.update(1)
                progress.set_postfix(fps=f'{meter.smoothed:.2f}', dropped=seq - plate_seqs - meter.count,
                                     refresh=False)
                if window:
                    lines = [f'{meter.smoothed:.1f} fps'] if options.show_fps else []
                    key = window.show(composite, lines)
                    if key == 'b':
                        plate = None
                    elif key == 'n':
                        backgrounds.next()
                    elif key == 'a':
                        aligner = None if aligner else Aligner(warn, per_item_warnings=False)
                    elif key in ('q', '\x1b'):
                        break
    except KeyboardInterrupt:  # the usual way to stop a live run: keep what was recorded
        interrupted = True
    except BaseException:
        if recorder:
            recorder.close(commit=False)
        raise
    finally:
        capture.close()
        if window:
            window.close()
    if recorder:
        recorder.close(commit=True)
    if aligner:
        aligner.report()
    latency = sorted(latencies)
    return {'captured': capture.captured, 'matted': meter.count, 'plate_frames': plate_seqs,
            'dropped': max(0, matted_seq - plate_seqs - meter.count), 'fps': meter.average,
            'latency_ms': {'median': 1000 * latency[len(latency) // 2] if latency else 0.0,
                           'max': 1000 * latency[-1] if latency else 0.0},
            'size': (capture.width, capture.height), 'interrupted': interrupted,
            'record': record if recorder and recorder.written else None,
            'record_fps': recorder.fps if recorder else None}


def capture_frame_like(capture):
    """The current frame (to size a given plate against)."""
    return capture.read(after=0)[2]


def summary_line(summary):
    """One line for the end of a live run."""
    line = (f'{summary["matted"]} frames matted at {summary["size"][0]}x{summary["size"][1]}, '
            f'{summary["fps"]:.2f} fps; {summary["dropped"]} of {summary["captured"]} camera frames '
            f'dropped to keep up (latency median {summary["latency_ms"]["median"]:.0f} ms, max '
            f'{summary["latency_ms"]["max"]:.0f} ms)')
    if summary['record']:
        line += f'; recorded to {summary["record"]} ({summary["record_fps"]:g} fps)'
    return line
