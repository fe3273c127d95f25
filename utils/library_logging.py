"""Quiet the third-party libraries' console noise that is not addressed to our users.

Imported first by the `utils` and `dataset` packages, so it runs before paddle or cv2 is loaded
by any script, test or notebook of the project. `model/` depends on nothing in `utils/`: it
loads paddle only when a network is first used, and every entry point (the scripts, `utils`,
`dataset`, the notebook's first import) has imported `utils` by then. Only messages that duplicate a clean
error of ours, or that concern Paddle's own build, are silenced; every setting here is a
default that an environment variable set by the user overrides (e.g. OPENCV_LOG_LEVEL=INFO
OPENCV_FFMPEG_LOGLEVEL=32 to debug a video that will not open).

* Paddle's `No ccache found` UserWarning (paddle/utils/cpp_extension, raised at `import
  paddle`): about compiling C++ extensions, which the project never does.
* OpenCV's own log (`[ WARN:0@...] grfmt_png.cpp ... PNG input buffer is incomplete`): we check
  every decode and raise one clear error instead; OpenCV errors are still printed.
* FFmpeg's log inside OpenCV (`moov atom not found` for a truncated video, level ERROR there):
  VideoReader reports an unreadable video itself; fatal FFmpeg messages are kept.
* Paddle's `... not support input out tensor for now!!!!!` glog line when a model is traced
  for export: filtered out of stderr around the tracing only (filtered_stderr).
libpng's `libpng error: ...` lines are avoided rather than hidden: utils.image_io checks the PNG
chunk structure before handing the bytes to OpenCV (png_problem).
"""
import contextlib
import os
import sys
import tempfile
import warnings

OPENCV_LOG_LEVEL = 'ERROR'
# FFmpeg's AV_LOG_FATAL: above it (AV_LOG_ERROR = 16) FFmpeg reports what we report ourselves.
OPENCV_FFMPEG_LOGLEVEL = '8'
CCACHE_WARNING = 'No ccache found'


def quiet_libraries():
    """Apply the defaults above; safe to call more than once and after cv2 was imported."""
    warnings.filterwarnings('ignore', message=CCACHE_WARNING, category=UserWarning)
    os.environ.setdefault('OPENCV_LOG_LEVEL', OPENCV_LOG_LEVEL)
    # read by OpenCV when its FFmpeg backend first opens a file
    os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', OPENCV_FFMPEG_LOGLEVEL)
    cv2 = sys.modules.get('cv2')
    if cv2 is not None and os.environ['OPENCV_LOG_LEVEL'] == OPENCV_LOG_LEVEL:
        # imported before us: the environment variable was read already
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


quiet_libraries()


# Paddle 3.3.1 logs this (glog, C++) the first time any tensor operator is traced to a PIR
# program: its Python APIs pass `out=None` to the C++ ops, which warn that PIR has no `out`.
PADDLE_PIR_OUT_WARNING = 'not support input out tensor for now'


@contextlib.contextmanager
def filtered_stderr(*patterns):
    """Drop the lines of file descriptor 2 that contain one of `patterns` within the block.

    For messages written by C++ libraries (glog), which Python's warnings filters do not see.
    Everything else written to stderr meanwhile, by any thread, is passed on at the end.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().splitlines(keepends=True)
                    if not any(p.encode() in line for p in patterns)]
            if kept:
                os.write(2, b''.join(kept))


@contextlib.contextmanager
def quiet_paddle2onnx():
    """Hold back what paddle2onnx and its optimisers print (dozens of progress lines on stdout
    and stderr, from C++ and Python) within the block; replayed on stderr if the block fails."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 1)
        os.dup2(captured.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
            if failed:
                captured.seek(0)
                os.write(2, captured.read())
