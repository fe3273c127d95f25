"""Video reading and writing with OpenCV, and the background threads that overlap them with
inference.

Frames are float32 RGB HWC arrays in [0, 1] like everything else in the project (OpenCV's
uint8 BGR is converted here). `Prefetcher` runs any iterator (decoding, alignment, ...) in a
thread and `ThreadedWriter` runs the encoding in another, so the main thread only runs the
network; OpenCV releases the GIL while it decodes and encodes, so this overlaps for real.
"""
import os
import queue
import tempfile
import threading

import cv2
import numpy as np

from utils.image_io import to_uint8

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg', '.wmv', '.flv',
                    '.3gp', '.ts', '.mts', '.ogv')


class VideoReadError(ValueError):
    """A video file is missing or cannot be decoded. The message names the file."""


class VideoWriteError(RuntimeError):
    """OpenCV cannot write the requested video. The message names the file and a fix."""


def is_video_file(path):
    return path.lower().endswith(VIDEO_EXTENSIONS)


class VideoReader:
    """Iterate the frames of a video file as float32 RGB (H, W, 3) arrays.

    The first frame is decoded when the reader is opened, so that an unreadable file fails
    at once with a clear message instead of producing an empty output later.
    """

    def __init__(self, path):
        if not os.path.isfile(path):
            raise VideoReadError(f'{path}: no such file; check the path')
        self.path = path
        self._capture = cv2.VideoCapture(path)
        ok, frame = self._capture.read() if self._capture.isOpened() else (False, None)
        if not ok or frame is None:
            self._capture.release()
            raise VideoReadError(f'{path}: not a readable video (corrupt, empty or unsupported '
                                 f'codec); re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4')
        self._first = frame
        self.height, self.width = frame.shape[:2]
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        # Some containers report no rate; 0 or NaN would make an unplayable output.
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else None
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None  # an estimate for some containers

    def __iter__(self):
        frame = self._first
        self._first = None
        if frame is None:
            raise RuntimeError(f'{self.path}: a VideoReader can be iterated only once')
        try:
            while frame is not None:
                yield from_opencv(frame)
                ok, frame = self._capture.read()
                if not ok:
                    frame = None
        finally:
            self._capture.release()

    def close(self):
        self._capture.release()


def from_opencv(frame):
    """OpenCV frame (uint8/uint16 BGR or gray) -> float32 RGB in [0, 1]."""
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    elif frame.shape[2] == 4:
        frame = frame[:, :, :3]
    scale = 65535.0 if frame.dtype == np.uint16 else 255.0
    return np.ascontiguousarray(frame[:, :, ::-1], dtype=np.float32) / scale


def _to_opencv(img):
    """float [0, 1] or uint8 (H, W, 1|3) RGB -> uint8 BGR (H, W, 3) for cv2.VideoWriter."""
    if img.dtype != np.uint8:
        img = to_uint8(img)
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(img[:, :, 2::-1])


class VideoFileWriter:
    """Write frames to a video file (mp4v codec), atomically.

    Frames go to a temporary file beside `path` (same extension, so OpenCV picks the same
    container) that is renamed to `path` only by `close(commit=True)`; a failed run never
    leaves a truncated video, nor replaces an existing one.

    The encoder works on 4:2:0 chroma, so OpenCV silently crops odd widths and heights to even
    ones. We pad instead (repeating the last row/column) so that no pixel of the output is
    lost; `padded` tells the caller that the file is one pixel larger than the frames.
    """

    def __init__(self, path, fps, size, fourcc='mp4v'):
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=directory, prefix='.tmp_', suffix=os.path.splitext(path)[1])
        os.close(fd)
        width, height = size
        self.frame_size = (width, height)
        self.size = (width + width % 2, height + height % 2)
        self.padded = self.size != self.frame_size
        self._writer = cv2.VideoWriter(self._tmp, cv2.VideoWriter_fourcc(*fourcc), fps, self.size)
        if not self._writer.isOpened():
            os.remove(self._tmp)
            raise VideoWriteError(f'{path}: OpenCV cannot write {fourcc} video here; use '
                                  f'--video-output-type png_sequence')

    def write(self, img):
        frame = _to_opencv(img)
        if self.padded:
            frame = np.pad(frame, ((0, self.size[1] - frame.shape[0]), (0, self.size[0] - frame.shape[1]),
                                   (0, 0)), mode='edge')
        self._writer.write(frame)

    def close(self, commit=True):
        self._writer.release()
        if commit:
            os.replace(self._tmp, self.path)
        elif os.path.exists(self._tmp):
            os.remove(self._tmp)


class Prefetcher:
    """Run an iterator in a background thread, `depth` items ahead of the consumer.

    Exceptions raised by the iterator are re-raised in the consumer, at the point where the
    item would have arrived. `close()` stops the thread early (e.g. when the consumer fails).
    """

    _END = object()

    def __init__(self, iterable, depth=4):
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iterable,), daemon=True)
        self._thread.start()

    def _put(self, item):
        # Poll so that close() can stop a producer blocked on a full queue.
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def _run(self, iterable):
        try:
            for item in iterable:
                if not self._put((True, item)):
                    return
        except BaseException as e:  # handed to the consumer, which decides
            self._put((False, e))
            return
        self._put((True, self._END))

    def __iter__(self):
        while True:
            ok, item = self._queue.get()
            if not ok:
                raise item
            if item is self._END:
                return
            yield item

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)


class ThreadedWriter:
    """Call `write(item)` for each submitted item in a background thread.

    `submit` blocks when `depth` items are waiting (bounded memory). An exception in the
    writer is re-raised by the next `submit` or by `finish`.
    """

    def __init__(self, write, depth=8):
        self._write = write
        self._queue = queue.Queue(maxsize=depth)
        self._error = None
        self._cancelled = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is None and not self._cancelled:  # else drain without writing
                try:
                    self._write(item)
                except BaseException as e:
                    self._error = e

    def _check(self):
        if self._error is not None:
            raise self._error

    def submit(self, item):
        self._check()
        self._queue.put(item)

    def finish(self, raise_errors=True):
        """Wait for all submitted writes and re-raise the first error.

        With raise_errors=False (the failure path, where the caller is already handling
        another error) the items still queued are dropped instead of written.
        """
        if not raise_errors:
            self._cancelled = True
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if raise_errors:
            self._check()
