"""Video reading (OpenCV) and writing (FFmpeg through imageio-ffmpeg, or OpenCV), and the
background threads that overlap them with inference.

Writing codecs (VideoFileWriter(..., codec=...)):
    'h264'       H.264, yuv420p: plays in browsers and editors; imageio-ffmpeg's bundled ffmpeg
                 (libx264). Falls back to 'mp4v' when imageio-ffmpeg is not installed.
    'mp4v'       MPEG-4 part 2 through OpenCV (plays in VLC/ffmpeg-based players, not in browsers).
    'vp9-alpha'  VP9 with an alpha channel (yuva420p) in .webm, through libvpx-vp9: keeps the
                 matte in the video (write RGBA frames); needs imageio-ffmpeg.
With imageio-ffmpeg, `audio_from=SOURCE` copies the source video's audio track into the output
(re-encoded to AAC, Opus for .webm; cut to the video's length).

Frames are float32 RGB HWC arrays in [0, 1] like everything else in the project (OpenCV's
uint8 BGR is converted here). `Prefetcher` runs any iterator (decoding, alignment, ...) in a
thread and `ThreadedWriter` runs the encoding in another, so the main thread only runs the
network; OpenCV releases the GIL while it decodes and encodes, so this overlaps for real.
"""
import os
import queue
import re
import subprocess
import tempfile
import threading

import cv2
import numpy as np

from utils.image_io import default_permissions, to_uint8

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


VIDEO_CODECS = ('h264', 'mp4v', 'vp9-alpha')
ALPHA_CODECS = ('vp9-alpha',)
# FFmpeg settings per codec: encoder, pixel format in the file, extensions it can go in
_FFMPEG_CODECS = {
    'h264': ('libx264', 'yuv420p', ('.mp4', '.mov', '.mkv', '.m4v')),
    'vp9-alpha': ('libvpx-vp9', 'yuva420p', ('.webm', '.mkv')),
}
H264_QUALITY = 8  # imageio-ffmpeg's 0-10 scale; 8 is libx264 crf 10: visually lossless mattes


def _imageio_ffmpeg():
    """The imageio_ffmpeg module, or None when it is not installed."""
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg
    except ImportError:
        return None


def default_video_codec():
    """'h264' when imageio-ffmpeg (with its bundled ffmpeg) is installed, else 'mp4v'."""
    return 'h264' if _imageio_ffmpeg() is not None else 'mp4v'


def has_audio(path):
    """True if the media file `path` has an audio stream (asks the bundled ffmpeg)."""
    iio = _imageio_ffmpeg()
    if iio is None or not os.path.isfile(path):
        return False
    probe = subprocess.run([iio.get_ffmpeg_exe(), '-hide_banner', '-i', path],
                           capture_output=True, text=True, errors='replace')
    return re.search(r'Stream #\S+.*: Audio:', probe.stderr) is not None


class VideoFileWriter:
    """Write frames to a video file, atomically.

    Args:
        path: output file; its extension picks the container.
        fps: frame rate; size: (width, height) of the frames.
        fourcc: the OpenCV codec when `codec` is None (the default: OpenCV, mp4v).
        codec: one of VIDEO_CODECS (see the module docstring). 'h264' without imageio-ffmpeg
            writes 'mp4v' instead; `codec` then says what was written and `notes` why.
        audio_from: a video whose audio track is copied into the output (if it has one;
            needs imageio-ffmpeg, else a note).
    write(img): float [0, 1] or uint8 RGB (H, W, 3), gray (H, W[, 1]) or, for an alpha codec,
        RGBA (H, W, 4) (RGB frames are opaque there; alpha is dropped for the other codecs).
    Attributes: codec (what is written), notes (list of strings the caller should show the
        user: a fallback, a dropped audio track), padded (see below).

    Frames go to a temporary file beside `path` (same extension, so the same container) that
    is renamed to `path` only by `close(commit=True)`; a failed run never leaves a truncated
    video, nor replaces an existing one.

    The encoders work on 4:2:0 chroma, so OpenCV silently crops odd widths and heights to even
    ones. We pad instead (repeating the last row/column) so that no pixel of the output is
    lost; `padded` tells the caller that the file is one pixel larger than the frames.
    """

    def __init__(self, path, fps, size, fourcc='mp4v', codec=None, audio_from=None):
        self.path = path
        self.notes = []
        extension = os.path.splitext(path)[1].lower()
        if codec is not None and codec not in VIDEO_CODECS:
            raise ValueError(f'codec must be one of {VIDEO_CODECS}, got {codec!r}')
        iio = _imageio_ffmpeg()
        if codec in _FFMPEG_CODECS and iio is None:
            if codec in ALPHA_CODECS:
                raise VideoWriteError(f'{path}: {codec} video needs imageio-ffmpeg (pip install '
                                      f'imageio-ffmpeg); or use --video-output-type png_sequence')
            self.notes.append(f'imageio-ffmpeg is not installed: wrote mp4v instead of {codec}, '
                              f'which browsers do not play (pip install imageio-ffmpeg)')
            codec = 'mp4v'
        if codec in _FFMPEG_CODECS and extension not in _FFMPEG_CODECS[codec][2]:
            raise VideoWriteError(f'{path}: {codec} video goes in a '
                                  f'{"/".join(_FFMPEG_CODECS[codec][2])} file; change the extension')
        self.codec = codec or fourcc
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=directory, prefix='.tmp_', suffix=extension)
        os.close(fd)
        width, height = size
        self.frame_size = (width, height)
        self.size = (width + width % 2, height + height % 2)
        self.padded = self.size != self.frame_size
        self._alpha = codec in ALPHA_CODECS
        self._ffmpeg = None
        self._writer = None
        if codec in _FFMPEG_CODECS:
            encoder, pix_fmt, _ = _FFMPEG_CODECS[codec]
            audio = audio_from if audio_from and has_audio(audio_from) else None
            # the audio is cut to the video: padded with silence (apad) so that a slightly
            # shorter track never cuts the last frames off with -shortest
            output_params = ['-af', 'apad', '-shortest'] if audio else []
            if codec == 'vp9-alpha':
                output_params += ['-auto-alt-ref', '0', '-b:v', '0', '-crf', '20']
            self._ffmpeg = iio.write_frames(
                self._tmp, self.size, pix_fmt_in='rgba' if self._alpha else 'rgb24',
                pix_fmt_out=pix_fmt, fps=fps, codec=encoder, macro_block_size=1,
                quality=H264_QUALITY if codec == 'h264' else None, ffmpeg_log_level='error',
                output_params=output_params, audio_path=audio,
                audio_codec=('libopus' if extension == '.webm' else 'aac') if audio else None)
            try:
                self._ffmpeg.send(None)  # starts ffmpeg
            except Exception as e:
                self._discard()
                raise VideoWriteError(f'{path}: ffmpeg cannot write {codec} video ({e}); use '
                                      f'--video-output-type png_sequence') from None
        else:
            if audio_from and (iio is None or has_audio(audio_from)):
                self.notes.append(f'{path}: audio of {audio_from} not kept ({self.codec} through '
                                  f'OpenCV writes video only; h264 with imageio-ffmpeg keeps it)')
            self._writer = cv2.VideoWriter(self._tmp, cv2.VideoWriter_fourcc(*self.codec), fps, self.size)
            if not self._writer.isOpened():
                self._discard()
                raise VideoWriteError(f'{path}: OpenCV cannot write {self.codec} video here; use '
                                      f'--video-output-type png_sequence')

    def _pad(self, frame):
        if not self.padded:
            return frame
        return np.pad(frame, ((0, self.size[1] - frame.shape[0]), (0, self.size[0] - frame.shape[1]),
                              (0, 0)), mode='edge')

    def write(self, img):
        if self._writer is not None:
            self._writer.write(self._pad(_to_opencv(img)))
            return
        frame = _to_rgb_uint8(img, alpha=self._alpha)
        self._ffmpeg.send(np.ascontiguousarray(self._pad(frame)))

    def _discard(self):
        if os.path.exists(self._tmp):
            os.remove(self._tmp)

    def close(self, commit=True):
        try:
            if self._writer is not None:
                self._writer.release()
            else:
                self._ffmpeg.close()  # waits for ffmpeg to finish the file
        except Exception as e:
            self._discard()
            if commit:
                raise VideoWriteError(f'{self.path}: ffmpeg failed to finish the video ({e})') from None
            return
        if commit:
            default_permissions(self._tmp)
            os.replace(self._tmp, self.path)
        else:
            self._discard()


def _to_rgb_uint8(img, alpha=False):
    """float [0, 1] or uint8 gray/RGB/RGBA -> uint8 RGB (H, W, 3), or RGBA (H, W, 4) if alpha."""
    if img.dtype != np.uint8:
        img = to_uint8(img)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    if not alpha:
        return img[:, :, :3]
    if img.shape[2] == 3:
        img = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return img


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
