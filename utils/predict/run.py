"""The work behind predict.py: the inference loop from inputs to staged outputs.

    config = PredictConfig(src='src_dir', bgr='bgr_dir', weights='model.pdparams',
                           output_dir='image', output_types=['pha', 'com'])
    summary = run_prediction(config)

Inputs are one src/bgr image pair, two folders of images matched by name, a video with a
background image or background video, or a folder of videos (utils.predict.inputs). Items are
read (and, with alignment, aligned) in a background thread, run through the engine in batches,
and written by another thread into a staging folder (utils.predict.outputs).
"""
import contextlib
import os
import signal
import sys
import threading
import time
from dataclasses import replace

from utils.image_io import to_uint8
from utils.predict.compose import crop, images_to_nchw, output_images, pad_to_multiple, upsample
from utils.predict.inputs import (Aligner, _check_background_video, _image_items, _video_items, check_size,
                                  find_image_pairs, find_video_clips, input_mode)
from utils.predict.options import (FALLBACK_FPS, MODEL_DEFAULTS, PredictError, Terminated, warn_to_stderr,
                                   check_config)
from utils.predict.outputs import ImageSink, OutputStaging, VideoSink, _image_units, _video_units
from utils.predict.targets import TargetBackground
from utils.video_io import Prefetcher, ThreadedWriter, VideoReader

def _model_options(config):
    options = {k: getattr(config, k) if getattr(config, k) is not None else v
               for k, v in MODEL_DEFAULTS.items()}
    for key in ('backbone', 'refine_kernel_size'):  # None: what the weights hold
        if getattr(config, key) is not None:
            options[key] = getattr(config, key)
    return options


def load_engine(config, warn):
    """The engine for `config`: an exported model (inference_model) or weights."""
    from utils.deploy import engine as engines
    if config.inference_model:
        given = [k for k in list(MODEL_DEFAULTS) + ['backbone', 'refine_kernel_size']
                 if getattr(config, k) is not None]
        if given:
            warn(f'{config.inference_model}: model options are baked into an exported model; '
                 f'ignoring --{given[0].replace("_", "-")}' + (' and others' if len(given) > 1 else ''))
        if not os.path.isdir(config.inference_model):
            raise PredictError(f'{config.inference_model}: no such folder; pass the folder '
                               f'written by the export (--inference-model DIR)')
        try:
            return engines.open_export(config.inference_model, config.engine, device=config.device,
                                       precision=config.precision)
        except (ValueError, ImportError) as e:
            raise PredictError(f'{config.inference_model}: {e}') from None
    return _create_engine(config, config.engine)


def _create_engine(config, engine):
    """utils.deploy.engine.create_engine, with its errors turned into one-line PredictErrors."""
    from model.weights import CheckpointError
    from utils.deploy.engine import create_engine
    try:
        return create_engine(config.weights, engine=engine, device=config.device,
                             precision=config.precision, **_model_options(config))
    except CheckpointError as e:
        message = str(e)
        if config.weights not in message:  # some messages only say what is wrong
            message = f'{config.weights}: {message}'
        raise PredictError(message) from None
    except ValueError as e:
        raise PredictError(str(e)) from None
    except RuntimeError as e:  # e.g. --device gpu on a CPU-only Paddle
        raise PredictError(str(e)) from None


def infer(engine, items, kinds):
    """Run a batch of same-sized items; returns the output images of each (input size)."""
    src, size = pad_to_multiple(images_to_nchw([item.src for item in items]))
    bgr, _ = pad_to_multiple(images_to_nchw([item.bgr for item in items]))
    out = engine(src, bgr)
    result = {'pha': crop(out['pha'], size), 'fgr': crop(out['fgr'], size)}
    # err and ref are quarter-resolution maps of the padded input: upsample to the padded
    # size, then crop, so that they line up with the image.
    padded = src.shape[2:]
    if 'err' in kinds:
        result['err'] = crop(upsample(out['err_sm'], padded), size)
    if 'ref' in kinds:
        result['ref'] = crop(upsample(out['ref_sm'], padded, nearest=True), size)
    return output_images(result, kinds, [item.target for item in items])


def _batches(items, batch_size):
    """Group consecutive items of the same size into lists of at most batch_size."""
    batch = []
    for item in items:
        if batch and (len(batch) == batch_size or item.src.shape != batch[0].src.shape):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _os_error_message(error, output_dir):
    """One line for an OSError (permissions, disk full, ...) with the likely fix."""
    path = error.filename or output_dir
    inside = os.path.abspath(str(path)).startswith(os.path.abspath(output_dir) + os.sep)
    fix = ('check the free space and permissions of --output-dir' if inside
           else 'check that the file is readable')
    return f'{path}: {error.strerror or error}; {fix}'


def run_prediction(config):
    """Run the prediction described by `config`.

    Returns a summary dict: mode ('images' | 'video'), count (items), seconds (inference
    loop), kinds (output types) and outputs (the files/folders written).
    """
    try:
        with _terminate_as_exception():
            return _run_prediction(config)
    except OSError as e:  # unreadable folders, full disks, ...
        raise PredictError(_os_error_message(e, config.output_dir)) from None


@contextlib.contextmanager
def _terminate_as_exception():
    """Within the block, SIGTERM raises Terminated (a KeyboardInterrupt) in the main thread, so
    the staging folder is removed as after Ctrl+C instead of being left by the default action.
    (SIGKILL cannot be caught: OutputStaging removes such leftovers on the next run.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # Paddle installs a SIGTERM handler of its own when imported (it prints a FatalError
    # report and exits, leaving the staging folder): import it first so that ours replaces it.
    import paddle  # noqa: F401

    def stop(signum, frame):
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_prediction(config):
    warn = config.warn or warn_to_stderr
    mode = input_mode(config.src, config.bgr)
    kinds = check_config(config, mode)
    target = TargetBackground(config.target_bgr, 'video' if mode == 'videos' else mode) \
        if 'new' in kinds else None
    if mode == 'images':
        pairs = find_image_pairs(config.src, config.bgr)
        units = _image_units([name for name, _, _ in pairs], kinds)
        clips = None
    else:
        # one video, or a folder of them: each clip's outputs in <output-dir>/<clip name>/
        clips = ([('', config.src, config.bgr)] if mode == 'video'
                 else find_video_clips(config.src, config.bgr))
        units = [os.path.join(name, unit) for name, _, _ in clips
                 for unit in _video_units(kinds, config.video_output_type)]
    staging = OutputStaging(config.output_dir, units, config.overwrite)
    try:
        engine = load_engine(config, warn)
        scale = _backbone_scale(engine, config)
        if clips is None:
            summary = _run(config, engine, scale, kinds, warn, len(pairs), 'image',
                           lambda aligner: _image_items(pairs, config, target, aligner, warn),
                           lambda: ImageSink(staging), per_item_warnings=True)
        else:
            summary = {'count': 0, 'seconds': 0.0}
            for name, src, bgr in clips:
                clip = _run_clip(replace(config, src=src, bgr=bgr), engine, scale, kinds, staging,
                                 warn, target, name)
                summary = {k: summary[k] + clip[k] for k in summary}
        staging.commit()
    except BaseException:
        staging.abort()
        raise
    summary.update(mode=mode, kinds=kinds, output_dir=config.output_dir,
                   outputs=[os.path.join(config.output_dir, unit) for unit in units])
    return summary


def _run_clip(config, engine, scale, kinds, staging, warn, target, prefix):
    """One video (config.src with its plate config.bgr) into <staging>/<prefix>/."""
    reader = VideoReader(config.src)
    try:
        _check_background_video(config, reader)
        size = tuple(config.resize) if config.resize else (reader.width, reader.height)
        return _run(config, engine, scale, kinds, warn, reader.frame_count, 'frame',
                    lambda aligner: _video_items(reader, config, target, aligner),
                    lambda: VideoSink(staging, kinds, config.video_output_type,
                                      _frame_rate(reader, config, warn), size, warn, prefix=prefix,
                                      audio_from=config.src),
                    per_item_warnings=False)
    finally:
        reader.close()


def _backbone_scale(engine, config):
    """The backbone scale the engine runs at (an exported model's own)."""
    options = getattr(engine, 'options', None) or {}
    return options.get('backbone_scale') or config.backbone_scale or MODEL_DEFAULTS['backbone_scale']


def _frame_rate(reader, config, warn):
    """The source's frame rate (outputs keep it); FALLBACK_FPS if the file does not say."""
    if reader.fps is None and config.video_output_type == 'video':
        warn(f'{config.src}: the video does not report its frame rate; writing {FALLBACK_FPS:g} fps')
    return reader.fps or FALLBACK_FPS


def _run(config, engine, scale, kinds, warn, total, unit_name, make_items, make_sink, per_item_warnings):
    """The inference loop: read (thread) -> batch -> engine -> write (thread) into the staging
    folder; the caller commits it, or discards it on any failure (the writers are cancelled)."""
    from tqdm import tqdm
    aligner = Aligner(warn, per_item_warnings) if config.preprocess_alignment else None
    prefetch = writer = sink = None
    try:
        sink = make_sink()
        # One batch waits on each side of the network: enough to overlap reading and writing
        # with inference, and bounded memory (a 4K frame is 100 MB as float32).
        prefetch = Prefetcher(make_items(aligner), depth=config.batch_size)
        writer = ThreadedWriter(sink, depth=config.batch_size)
        start = time.perf_counter()
        count = 0
        with tqdm(total=total, unit=unit_name, disable=config.quiet, dynamic_ncols=True,
                  file=sys.stderr) as progress:
            for batch in _batches(prefetch, config.batch_size):
                height, width = batch[0].src.shape[:2]
                check_size(width, height, batch[0].label, scale)
                for item, images in zip(batch, infer(engine, batch, kinds)):
                    # queued as 8-bit, what is written anyway: a quarter of the memory
                    writer.submit((item.name, {k: to_uint8(v) for k, v in images.items()}))
                count += len(batch)
                progress.update(len(batch))
        writer.finish()
        writer = None
        sink.close(commit=True)
        sink = None
        seconds = time.perf_counter() - start
        if aligner:
            aligner.report()
    finally:
        if writer is not None:
            writer.finish(raise_errors=False)
        if sink is not None:
            sink.close(commit=False)
        if prefetch is not None:
            prefetch.close()
    return {'count': count, 'seconds': seconds}
