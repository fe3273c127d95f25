"""The work behind predict.py: the inference loop from inputs to staged outputs.

    config = PredictConfig(src='src_dir', bgr='bgr_dir', weights='model.pdparams',
                           output_dir='image', output_types=['pha', 'com'])
    summary = run_prediction(config)

Inputs are one src/bgr image pair, two folders of images matched by name, or a video with a
background image or background video (utils.predict.inputs). Items are read (and, with
alignment, aligned) in a background thread, run through the engine in batches, and written by
another thread into a staging folder (utils.predict.outputs).
"""
import os
import sys
import time

from utils.image_io import to_uint8
from utils.predict.compose import crop, images_to_nchw, output_images, pad_to_multiple, upsample
from utils.predict.inputs import (Aligner, _check_background_video, _image_items, _video_items,
                                  find_image_pairs, input_mode)
from utils.predict.options import FALLBACK_FPS, MODEL_DEFAULTS, PredictError, check_config, warn_to_stderr
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
        return engines.InferenceEngine(config.inference_model, device=config.device)
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
        return _run_prediction(config)
    except OSError as e:  # unreadable folders, full disks, ...
        raise PredictError(_os_error_message(e, config.output_dir)) from None


def _run_prediction(config):
    warn = config.warn or warn_to_stderr
    mode = input_mode(config.src, config.bgr)
    kinds = check_config(config, mode)
    target = TargetBackground(config.target_bgr, mode) if 'new' in kinds else None
    if mode == 'images':
        pairs = find_image_pairs(config.src, config.bgr)
        units = _image_units([name for name, _, _ in pairs], kinds)
        staging = OutputStaging(config.output_dir, units, config.overwrite)
        try:
            summary = _run(config, kinds, staging, warn, len(pairs), 'image',
                           lambda aligner: _image_items(pairs, config, target, aligner),
                           lambda: ImageSink(staging), per_item_warnings=True)
        except BaseException:
            staging.abort()
            raise
    else:
        reader = VideoReader(config.src)
        try:
            _check_background_video(config, reader)
            units = _video_units(kinds, config.video_output_type)
            staging = OutputStaging(config.output_dir, units, config.overwrite)
            try:
                size = tuple(config.resize) if config.resize else (reader.width, reader.height)
                summary = _run(config, kinds, staging, warn, reader.frame_count, 'frame',
                               lambda aligner: _video_items(reader, config, target, aligner),
                               lambda: VideoSink(staging, kinds, config.video_output_type,
                                                 _frame_rate(reader, config, warn), size, warn),
                               per_item_warnings=False)
            except BaseException:
                staging.abort()
                raise
        finally:
            reader.close()
    summary.update(mode=mode, kinds=kinds, output_dir=config.output_dir,
                   outputs=[os.path.join(config.output_dir, unit) for unit in units])
    return summary


def _frame_rate(reader, config, warn):
    """The source's frame rate (outputs keep it); FALLBACK_FPS if the file does not say."""
    if reader.fps is None and config.video_output_type == 'video':
        warn(f'{config.src}: the video does not report its frame rate; writing {FALLBACK_FPS:g} fps')
    return reader.fps or FALLBACK_FPS


def _run(config, kinds, staging, warn, total, unit_name, make_items, make_sink, per_item_warnings):
    """The inference loop: read (thread) -> batch -> engine -> write (thread) -> commit.

    On any failure the writers are cancelled and the caller discards the staging folder.
    """
    from tqdm import tqdm
    engine = load_engine(config, warn)
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
        staging.commit()
    finally:
        if writer is not None:
            writer.finish(raise_errors=False)
        if sink is not None:
            sink.close(commit=False)
        if prefetch is not None:
            prefetch.close()
    return {'count': count, 'seconds': seconds}
