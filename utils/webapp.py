"""The web app behind app.py: matte an uploaded photo (or short video) and its plate in the browser.

    cache = ModelCache({'default checkpoint': 'weights/bgmv2_mobilenetv2_synthetic.pdparams'})
    result = matte_image(cache, 'photo.jpg', 'plate.jpg', 'default checkpoint', 0.25, 'sampling',
                         '#78ff9b', None, out_dir)   # dict: pha, fgr, new, ref images + files
    demo = build_app(cache)                          # gradio Blocks; demo.launch()

The handlers (`matte_image`, `matte_video`) are plain functions, testable without a browser;
bad uploads raise `AppInputError` with a one-line message that the page shows (never a stack
trace). One engine per (weights, backbone scale, refine mode) is built on first use and kept
(`ModelCache`); requests share one queue and run one at a time (two requests at once on two
cores would only slow both down), every engine built and called on one EngineThread. Matting
is predict's: `infer` on an engine of utils.deploy.engine (the fastest installed engine on the CPU).
"""
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback

import numpy as np

from model.options import REFINE_MODES
from utils.deploy.engine import EngineThread
from utils.image_io import ImageReadError, read_image, to_uint8, write_image
from utils.predict import MODEL_DEFAULTS
from utils.predict.compose import DEFAULT_TARGET_BGR
from utils.predict.inputs import Item
from utils.predict.options import FALLBACK_FPS
from utils.predict.run import infer
from utils.predict.targets import TargetBackground
from utils.video_io import VideoFileWriter, VideoReader, VideoReadError

# The backbone scales offered in the page (the model takes any <= 0.5; the default is one of them).
BACKBONE_SCALES = (0.125, 0.25, 0.5)
# A video longer than this is refused (matting runs at a few frames per second on a CPU).
MAX_VIDEO_FRAMES = 150
DEFAULT_WEIGHTS_LABEL = 'default checkpoint'
DEFAULT_COLOR = '#{:02x}{:02x}{:02x}'.format(*DEFAULT_TARGET_BGR)
# Video outputs: VP8 in WebM, which browsers play (OpenCV's mp4v is not played by them).
VIDEO_FOURCC, VIDEO_EXT = 'VP80', '.webm'
IMAGE_KINDS = ('pha', 'fgr', 'com', 'new', 'ref')
TITLE = 'BackgroundMattingV2 (PaddlePaddle)'


class AppInputError(ValueError):
    """A bad upload or choice; the message (one line) is shown in the page."""


class ModelCache:
    """Engines built once per (weights label, backbone scale, refine mode) and shared, all
    built and run on one EngineThread (Gradio answers each request on a thread of its pool).

    Args:
        weights: dict label -> weights file (.pdparams or official .pth), in display order.
        engine, device: as utils.deploy.engine.create_engine ('auto' picks the fastest installed engine on the CPU).
    """

    def __init__(self, weights, engine='auto', device='cpu'):
        self.weights = dict(weights)
        self.engine = engine
        self.device = device
        self._engines = {}
        self._lock = threading.Lock()
        self._thread = EngineThread()

    @property
    def labels(self):
        return list(self.weights)

    def get(self, label, backbone_scale, refine_mode):
        """(engine, seconds spent loading it: 0 when it was cached)."""
        from model.weights import CheckpointError
        if label not in self.weights:
            raise AppInputError(f'unknown weights {label!r}; choose one of {", ".join(self.weights)}')
        if float(backbone_scale) not in BACKBONE_SCALES:
            raise AppInputError(f'backbone scale {backbone_scale} is not offered; choose one of '
                                f'{", ".join(map(str, BACKBONE_SCALES))}')
        if refine_mode not in REFINE_MODES:
            raise AppInputError(f'refine mode {refine_mode!r}: choose one of {", ".join(REFINE_MODES)}')
        key = (label, float(backbone_scale), refine_mode)
        with self._lock:
            if key in self._engines:
                return self._engines[key], 0.0
            start = time.perf_counter()
            options = dict(MODEL_DEFAULTS, backbone_scale=float(backbone_scale), refine_mode=refine_mode)
            try:
                self._engines[key] = self._thread.create_engine(self.weights[label], engine=self.engine,
                                                                device=self.device, **options)
            except (CheckpointError, ValueError, RuntimeError) as e:
                raise AppInputError(f'cannot load {label}: {e}') from None
            return self._engines[key], time.perf_counter() - start


def _path(upload):
    """A gradio upload (path string or an object with .name) -> path, or None."""
    if upload is None:
        return None
    return upload if isinstance(upload, str) else getattr(upload, 'name', None)


def _read(upload, what):
    path = _path(upload)
    if not path:
        raise AppInputError(f'no {what} uploaded; upload one')
    try:
        return read_image(path)
    except ImageReadError:
        raise AppInputError(f'the {what} ({os.path.basename(path)}) is not a readable image; '
                            f'upload a PNG or JPEG') from None


def _check_same_size(src, bgr, src_what, bgr_what):
    if src.shape[:2] != bgr.shape[:2]:
        raise AppInputError(
            f'the {src_what} is {src.shape[1]}x{src.shape[0]} but the {bgr_what} is '
            f'{bgr.shape[1]}x{bgr.shape[0]}; upload a plate of the same size, shot from the same '
            f'place without the subject')


def _target(color, image_upload, width, height):
    """The new background: an uploaded image (scaled to cover), else the colour."""
    path = _path(image_upload)
    if path:
        try:
            read_image(path)
        except ImageReadError:
            raise AppInputError(f'the new background ({os.path.basename(path)}) is not a readable '
                                f'image; upload a PNG or JPEG, or clear it to use the colour') from None
        return TargetBackground(path, 'images').for_image(width, height)
    spec = (color or DEFAULT_COLOR).strip()
    if spec.startswith('rgb'):  # some browsers' colour pickers answer rgb(r, g, b) / rgba(...)
        spec = ','.join(spec[spec.index('(') + 1:spec.index(')')].split(',')[:3])
        spec = ','.join(str(int(round(float(v)))) for v in spec.split(','))
    try:
        return TargetBackground(spec, 'images').for_image(width, height)
    except Exception:
        raise AppInputError(f'colour {color!r} not understood; pick one, e.g. #78ff9b') from None


def refined_patch_map(src, ref):
    """The source dimmed, with the refined 4x4 patches in red: (H, W, 3) float."""
    overlay = src * 0.45
    overlay[..., 0] = np.maximum(overlay[..., 0], ref[..., 0])
    return overlay


def _timing(load, inference, total, frames=1):
    load_text = f'model loaded in {load:.1f} s' if load else 'model cached'
    per = f'{1000 * inference / max(frames, 1):.0f} ms per frame, ' if frames > 1 else ''
    return (f'inference {1000 * inference:.0f} ms ({per}{load_text}), total {total:.1f} s')


def matte_image(cache, src_upload, bgr_upload, weights_label, backbone_scale, refine_mode, color,
                target_upload, out_dir):
    """Matte one photo with its plate.

    Returns dict: pha (H, W, 1), fgr, new, ref (H, W, 3) float images, files (PNG paths in
    out_dir: pha, fgr, com (RGBA), new, ref), timings (seconds: load, inference, total) and
    summary (one line). Raises AppInputError for bad uploads or choices.
    """
    start = time.perf_counter()
    src = _read(src_upload, 'photo')
    bgr = _read(bgr_upload, 'plate')
    _check_same_size(src, bgr, 'photo', 'plate')
    target = _target(color, target_upload, src.shape[1], src.shape[0])
    engine, load = cache.get(weights_label, backbone_scale, refine_mode)
    begin = time.perf_counter()
    images = infer(engine, [Item('photo', 'photo', src, bgr, target)], IMAGE_KINDS)[0]
    inference = time.perf_counter() - begin
    images['ref'] = refined_patch_map(src, images['ref'])
    os.makedirs(out_dir, exist_ok=True)
    files = []
    for kind in IMAGE_KINDS:
        path = os.path.join(out_dir, f'{kind}.png')
        write_image(path, images[kind][:, :, 0] if images[kind].shape[2] == 1 else images[kind])
        files.append(path)
    total = time.perf_counter() - start
    return dict(images, files=files, timings={'load': load, 'inference': inference, 'total': total},
                summary=f'{src.shape[1]}x{src.shape[0]}: {_timing(load, inference, total)}')


def matte_video(cache, video_upload, bgr_upload, weights_label, backbone_scale, refine_mode, color,
                target_upload, out_dir, max_frames=MAX_VIDEO_FRAMES, progress=None):
    """Matte a short video with a plate image.

    Returns dict: videos (kind -> WebM path for pha, fgr, new), ref (the refined-patch map of
    the first frame), files (the videos), frames, timings and summary. Raises AppInputError.
    """
    start = time.perf_counter()
    path = _path(video_upload)
    if not path:
        raise AppInputError('no video uploaded; upload one')
    try:
        reader = VideoReader(path)
    except VideoReadError:
        raise AppInputError(f'the video ({os.path.basename(path)}) is not readable; upload an '
                            f'mp4/webm/mov, or re-encode it with ffmpeg') from None
    writers = {}
    try:
        if reader.frame_count and reader.frame_count > max_frames:
            raise AppInputError(_too_long(reader.frame_count, reader.fps, max_frames))
        bgr = _read(bgr_upload, 'plate')
        _check_same_size(np.empty((reader.height, reader.width)), bgr, 'video', 'plate')
        target = _target(color, target_upload, reader.width, reader.height)
        engine, load = cache.get(weights_label, backbone_scale, refine_mode)
        os.makedirs(out_dir, exist_ok=True)
        fps = reader.fps or FALLBACK_FPS
        for kind in ('pha', 'fgr', 'new'):
            writers[kind] = VideoFileWriter(os.path.join(out_dir, kind + VIDEO_EXT), fps,
                                            (reader.width, reader.height), fourcc=VIDEO_FOURCC)
        inference, frames, ref = 0.0, 0, None
        for frame in reader:
            frames += 1
            if frames > max_frames:  # the container under-reported its length
                raise AppInputError(_too_long(f'more than {max_frames}', reader.fps, max_frames))
            begin = time.perf_counter()
            images = infer(engine, [Item(frames, f'frame {frames}', frame, bgr, target)],
                           ('pha', 'fgr', 'new', 'ref'))[0]
            inference += time.perf_counter() - begin
            if ref is None:
                ref = refined_patch_map(frame, images['ref'])
            for kind, writer in writers.items():
                writer.write(to_uint8(images[kind]))
            if progress is not None:
                progress(frames / (reader.frame_count or max_frames), desc=f'frame {frames}')
    except BaseException:
        for writer in writers.values():
            writer.close(commit=False)
        raise
    finally:
        reader.close()
    for writer in writers.values():
        writer.close(commit=True)
    total = time.perf_counter() - start
    videos = {kind: writer.path for kind, writer in writers.items()}
    return {'videos': videos, 'ref': ref, 'files': list(videos.values()), 'frames': frames,
            'timings': {'load': load, 'inference': inference, 'total': total},
            'summary': f'{frames} frames {reader.width}x{reader.height}: '
                       f'{_timing(load, inference, total, frames)}'}


def _too_long(frames, fps, max_frames):
    seconds = f' ({max_frames / fps:.1f} s at its {fps:g} fps)' if fps else ''
    return (f'the video has {frames} frames; the app takes at most {max_frames}{seconds}; trim '
            f'it, or run python predict.py --src VIDEO --bgr PLATE for long videos')


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

def _guarded(handler):
    """Run a handler: bad input -> gr.Error with its message; anything else -> a one-line
    gr.Error (the traceback goes to the server log, not to the page)."""
    import gradio as gr

    def run(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except AppInputError as e:
            raise gr.Error(str(e), duration=None, print_exception=False) from None
        except Exception as e:
            traceback.print_exc(file=sys.stderr)
            raise gr.Error(f'matting failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}); '
                           f'see the server log', duration=None, print_exception=False) from None
    run.__name__ = handler.__name__
    return run


def build_app(cache, work_dir=None, max_video_frames=MAX_VIDEO_FRAMES):
    """The gradio Blocks of the app (queue: one request at a time, shared by both tabs)."""
    import gradio as gr
    work_dir = work_dir or tempfile.mkdtemp(prefix='bgmv2-app-')

    def request_dir():
        return tempfile.mkdtemp(dir=work_dir)

    def photo(src, bgr, label, scale, mode, color, target):
        result = matte_image(cache, src, bgr, label, scale, mode, color, target, request_dir())
        return (to_uint8(result['pha'][:, :, 0]), to_uint8(result['fgr']), to_uint8(result['new']),
                to_uint8(result['ref']), result['summary'], result['files'])

    def video(src, bgr, label, scale, mode, color, target, progress=gr.Progress()):
        result = matte_video(cache, src, bgr, label, scale, mode, color, target, request_dir(),
                             max_video_frames, progress)
        return (result['videos']['new'], result['videos']['pha'], to_uint8(result['ref']),
                result['summary'], result['files'])

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(f'# {TITLE}\nUpload a photo (or a short video) and its **plate**: the same '
                    f'view without the subject, same size. You get the alpha matte, the '
                    f'foreground, the composite on a new background and the map of the 4x4 '
                    f'patches the refiner re-predicted.')
        with gr.Row():
            label = gr.Dropdown(cache.labels, value=cache.labels[0], label='weights', elem_id='weights')
            scale = gr.Dropdown(list(BACKBONE_SCALES), value=MODEL_DEFAULTS['backbone_scale'],
                                label='backbone scale', elem_id='scale')
            mode = gr.Radio(list(REFINE_MODES), value=MODEL_DEFAULTS['refine_mode'],
                            label='refine mode', elem_id='mode')
            color = gr.ColorPicker(DEFAULT_COLOR, label='new background colour', elem_id='color')
            target = gr.File(label='new background image (optional)', file_types=['image'],
                             elem_id='target')
        with gr.Tab('Photo'):
            with gr.Row():
                src = gr.File(label='photo', file_types=['image'], elem_id='src')
                bgr = gr.File(label='plate', file_types=['image'], elem_id='bgr')
            run = gr.Button('Matte the photo', variant='primary', elem_id='run')
            status = gr.Markdown(elem_id='status')
            with gr.Row():
                pha = gr.Image(label='pha (alpha)', format='png', elem_id='pha')
                fgr = gr.Image(label='fgr (foreground)', format='png', elem_id='fgr')
                new = gr.Image(label='composite', format='png', elem_id='new')
                ref = gr.Image(label='refined patches (red)', format='png', elem_id='ref')
            files = gr.File(label='download', file_count='multiple', elem_id='files')
            run.click(_guarded(photo), [src, bgr, label, scale, mode, color, target],
                      [pha, fgr, new, ref, status, files], concurrency_limit=1,
                      concurrency_id='model')
        with gr.Tab('Video'):
            gr.Markdown(f'At most {max_video_frames} frames; longer videos: `python predict.py '
                        f'--src VIDEO --bgr PLATE`.')
            with gr.Row():
                vsrc = gr.File(label='video', file_types=['video'], elem_id='vsrc')
                vbgr = gr.File(label='plate (an image)', file_types=['image'], elem_id='vbgr')
            vrun = gr.Button('Matte the video', variant='primary', elem_id='vrun')
            vstatus = gr.Markdown(elem_id='vstatus')
            with gr.Row():
                vnew = gr.Video(label='composite', elem_id='vnew')
                vpha = gr.Video(label='pha (alpha)', elem_id='vpha')
                vref = gr.Image(label='refined patches, first frame', format='png', elem_id='vref')
            vfiles = gr.File(label='download', file_count='multiple', elem_id='vfiles')
            vrun.click(_guarded(video), [vsrc, vbgr, label, scale, mode, color, target],
                       [vnew, vpha, vref, vstatus, vfiles], concurrency_limit=1,
                       concurrency_id='model')
    demo.queue(default_concurrency_limit=1)
    demo.work_dir = work_dir
    return demo


def remove_work_dir(demo):
    shutil.rmtree(getattr(demo, 'work_dir', ''), ignore_errors=True)
