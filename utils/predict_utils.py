"""The work behind predict.py: input discovery, the inference loop and safe output writing.

    config = PredictConfig(src='src_dir', bgr='bgr_dir', weights='model.pdparams',
                           output_dir='image', output_types=['pha', 'com'])
    summary = run_prediction(config)

Inputs are one src/bgr image pair, two folders of images matched by name, or a video with a
background image or background video. Items are read (and, with alignment, aligned) in a
background thread, run through the engine in batches, and written by another thread.

Nothing is written in place while the run is going: all outputs go to a hidden staging
folder inside the output folder and are moved to their final names only when every item
succeeded. Existing outputs are checked before the run starts, so a run that would replace
them stops at once unless `overwrite` is set, and a run that fails leaves them untouched.

Expected failures (bad input files, weights, output folder) raise `PredictError` (or one of
the *Error types of utils.image_io / utils.video_io / utils.convert_weights) with a one-line
message that names the file and the fix; `UsageError` marks wrong option combinations.
"""
import itertools
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from utils.alignment import align_background
from utils.compose import (DEFAULT_TARGET_BGR, OUTPUT_KINDS, crop, images_to_nchw, output_images,
                           pad_to_multiple, parse_color, resize_image, upsample)
from utils.image_io import is_image_file, read_image, to_uint8, write_image
from utils.video_io import (Prefetcher, ThreadedWriter, VideoFileWriter, VideoReader, VideoWriteError,
                            is_video_file)

VIDEO_OUTPUT_TYPES = ('video', 'png_sequence')
ENGINES = ('auto', 'inference', 'dygraph')
# Used when a video does not report its frame rate.
FALLBACK_FPS = 30.0


class PredictError(Exception):
    """An expected failure; the message is one line naming the file and the fix."""


class UsageError(PredictError):
    """Options that do not go together (exit code 2, like argparse's own errors)."""


@dataclass
class PredictConfig:
    """Everything a prediction run needs; the fields mirror predict.py's options.

    Model options left at None take the weights' own (backbone, kernel size) or the
    MattingRefine defaults; with `inference_model` they are baked into the export.
    """
    src: str
    bgr: str
    weights: Optional[str] = None
    inference_model: Optional[str] = None
    engine: str = 'auto'
    device: str = 'cpu'
    precision: str = 'float32'
    backbone: Optional[str] = None
    backbone_scale: Optional[float] = None
    refine_mode: Optional[str] = None
    refine_sample_pixels: Optional[int] = None
    refine_threshold: Optional[float] = None
    refine_kernel_size: Optional[int] = None
    output_dir: str = 'image'
    output_types: Optional[List[str]] = None
    target_bgr: Optional[str] = None
    video_output_type: str = 'video'
    resize: Optional[List[int]] = None  # (W, H)
    resize_bgr: bool = False
    preprocess_alignment: bool = False
    batch_size: int = 4
    overwrite: bool = False
    quiet: bool = False
    # where warnings go (a callable taking one line); default: stderr
    warn: object = field(default=None, repr=False)


MODEL_DEFAULTS = {'backbone_scale': 0.25, 'refine_mode': 'sampling', 'refine_sample_pixels': 80_000,
                  'refine_threshold': 0.1}


def _warn_to_stderr(message):
    # tqdm.write keeps an active progress bar intact
    from tqdm import tqdm
    tqdm.write(f'warning: {message}', file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

@dataclass
class Item:
    """One unit of work: a source image/frame, its plate, its new background (for 'new')."""
    name: str          # output name: image stem, or frame index for videos
    label: str         # how messages refer to it (a file name, 'frame 12 of X')
    src: np.ndarray
    bgr: np.ndarray
    target: object = None


def _list_images(folder):
    """Image files directly inside `folder`, sorted by name (hidden files skipped)."""
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if not f.startswith('.') and is_image_file(f)
                  and os.path.isfile(os.path.join(folder, f)))


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def find_image_pairs(src, bgr):
    """(name, src_path, bgr_path) for an image pair, two folders (matched by file name without
    extension) or a folder of sources sharing one plate."""
    if os.path.isfile(src):
        if os.path.isdir(bgr):
            raise UsageError(f'{bgr}: a folder, but --src is a single image; pass one background '
                             f'image as --bgr')
        return [(_stem(src), src, bgr)]
    sources = _list_images(src)
    if not sources:
        raise PredictError(f'{src}: no images found (.png, .jpg, ...); check --src')
    names = {}
    for path in sources:
        if _stem(path) in names:
            raise PredictError(f'{path}: same name as {names[_stem(path)]}, so their outputs would '
                               f'collide; rename one of them')
        names[_stem(path)] = path
    if not os.path.isdir(bgr):
        return [(_stem(p), p, bgr) for p in sources]  # one plate for every image
    plates = {}
    for path in _list_images(bgr):
        plates.setdefault(_stem(path), []).append(path)
    missing = [p for p in sources if _stem(p) not in plates]
    if missing:
        more = f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''
        raise PredictError(f'{missing[0]}: no background of the same name in {bgr}{more}; add '
                           f'{os.path.join(bgr, _stem(missing[0]))}.png (any image extension) '
                           f'or remove the source')
    pairs = []
    for path in sources:
        candidates = plates[_stem(path)]
        if len(candidates) > 1:
            raise PredictError(f'{path}: several backgrounds match it ({", ".join(candidates)}); '
                               f'keep one')
        pairs.append((_stem(path), path, candidates[0]))
    return pairs


def input_mode(src, bgr):
    """'images' or 'video', after checking that the inputs exist and fit together."""
    for option, path in (('--src', src), ('--bgr', bgr)):
        if not os.path.exists(path):
            raise PredictError(f'{path}: no such file or folder; check {option}')
    if os.path.isfile(src) and not is_image_file(src):
        if not is_video_file(src):
            raise PredictError(f'{src}: neither an image nor a video by its extension; use '
                               f'.png/.jpg images, a folder of them, or a video (.mp4, .avi, ...)')
        if os.path.isdir(bgr):
            raise UsageError(f'{bgr}: a folder, but --src is a video; pass a background image '
                             f'or a background video as --bgr')
        return 'video'
    if os.path.isfile(bgr) and is_video_file(bgr):
        raise UsageError(f'{bgr}: a background video needs a source video as --src')
    return 'images'


def _fit_plate(src, bgr, src_label, bgr_label, resize_bgr):
    """Make the plate the size of the source: an error, or a resize with --resize-bgr."""
    if bgr.shape[:2] != src.shape[:2]:
        if not resize_bgr:
            raise PredictError(
                f'{bgr_label}: background is {bgr.shape[1]}x{bgr.shape[0]} but the source '
                f'{src_label} is {src.shape[1]}x{src.shape[0]}; pass --resize-bgr to resize it')
        bgr = resize_image(bgr, (src.shape[1], src.shape[0]))
    return bgr


class Aligner:
    """--preprocess-alignment: align each plate to its frame, warn when that fails."""

    def __init__(self, warn, per_item_warnings):
        self.warn = warn
        self.per_item_warnings = per_item_warnings
        self.failures = 0
        self.total = 0

    def __call__(self, src, bgr, label):
        aligned, result = align_background(src, bgr)
        self.total += 1
        if not result.ok:
            self.failures += 1
            if self.per_item_warnings or self.failures == 1:
                self.warn(f'{label}: no alignment found ({result.reason}); using the unaligned '
                          f'background')
        return aligned

    def report(self):
        if self.failures and not self.per_item_warnings:
            self.warn(f'alignment failed on {self.failures} of {self.total} frames; those used '
                      f'the unaligned background')


# ---------------------------------------------------------------------------------------------
# New backgrounds ('new' output)
# ---------------------------------------------------------------------------------------------

def _cover(img, width, height):
    """Scale `img` to cover width x height and crop the centre (no distortion)."""
    h, w = img.shape[:2]
    scale = max(width / w, height / h)
    sw, sh = max(width, round(w * scale)), max(height, round(h * scale))
    img = resize_image(img, (sw, sh))
    top, left = (sh - height) // 2, (sw - width) // 2
    return img[top:top + height, left:left + width]


class TargetBackground:
    """The background of the 'new' output: a colour, an image (scaled to cover each output,
    centre-cropped) or, for videos, a video played along (looped when shorter)."""

    def __init__(self, spec, mode):
        self.spec = spec
        self.color = None
        self.image = None
        self.video = None
        if spec is None:
            self.color = np.array(DEFAULT_TARGET_BGR, np.float32) / 255.0
            return
        try:
            self.color = parse_color(spec)
        except ValueError as e:
            raise UsageError(f'--target-bgr {e}') from None
        if self.color is not None:
            return
        if not os.path.isfile(spec):
            raise PredictError(f'{spec}: no such file, and not a colour; --target-bgr takes an '
                               f'image, a video or a colour like 0,255,0 or #00ff00')
        if is_video_file(spec):
            if mode != 'video':
                raise UsageError(f'{spec}: a video as --target-bgr needs a video as --src')
            VideoReader(spec).close()  # fail now if it cannot be read
            self.video = spec
        else:
            self.image = read_image(spec)
        self._resized = {}

    def frames(self, width, height):
        """Endless iterator of backgrounds for outputs of this size (one per frame)."""
        if self.color is not None:
            while True:
                yield self.color
        if self.image is not None:
            if (width, height) not in self._resized:
                self._resized[(width, height)] = _cover(self.image, width, height)
            while True:
                yield self._resized[(width, height)]
        while True:  # a video: loop it
            for frame in VideoReader(self.video):
                yield _cover(frame, width, height)

    def for_image(self, width, height):
        return next(self.frames(width, height))


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------

class OutputStaging:
    """Stage a run's outputs in a hidden folder inside `output_dir`; publish them on success.

    `units` are the paths (relative to output_dir) the run produces: files, or folders that
    are replaced as a whole (image sequences). They are checked before anything runs: an
    existing one is an error unless `overwrite`. `commit()` moves every unit into place;
    `abort()` deletes the staging folder, leaving output_dir as it was.
    """

    def __init__(self, output_dir, units, overwrite):
        self.output_dir = output_dir
        self.units = list(units)
        existing = [u for u in self.units if os.path.lexists(os.path.join(output_dir, u))]
        if existing and not overwrite:
            more = f' (and {len(existing) - 1} more outputs)' if len(existing) > 1 else ''
            raise PredictError(f'{os.path.join(output_dir, existing[0])} already exists{more}; pass '
                               f'--overwrite to replace, or choose another --output-dir')
        self._created = not os.path.isdir(output_dir)
        try:
            os.makedirs(output_dir, exist_ok=True)
            self.dir = tempfile.mkdtemp(prefix='.predict-partial-', dir=output_dir)
        except OSError as e:
            raise PredictError(f'{output_dir}: cannot write to the output directory '
                               f'({e.strerror or e}); choose another --output-dir') from None

    def path(self, relative):
        return os.path.join(self.dir, relative)

    def commit(self):
        trash = os.path.join(self.dir, '.replaced')
        for unit in self.units:
            staged, final = self.path(unit), os.path.join(self.output_dir, unit)
            if not os.path.lexists(staged):
                continue
            os.makedirs(os.path.dirname(final) or '.', exist_ok=True)
            if os.path.isdir(final) and not os.path.islink(final):
                # a folder unit (image sequence) replaces the old folder, stale frames and all
                os.makedirs(trash, exist_ok=True)
                os.replace(final, os.path.join(trash, unit.replace(os.sep, '_')))
            os.replace(staged, final)
        shutil.rmtree(self.dir, ignore_errors=True)

    def abort(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        if self._created:
            try:
                os.rmdir(self.output_dir)  # only if still empty
            except OSError:
                pass


def _image_units(names, kinds):
    return [os.path.join(kind, f'{name}.png') for name in names for kind in kinds]


def _video_units(kinds, video_output_type):
    if video_output_type == 'video':
        return [f'{kind}.mp4' for kind in kinds]
    return list(kinds)


class ImageSink:
    """Writes <staging>/<kind>/<name>.png for every output image."""

    def __init__(self, staging):
        self.staging = staging

    def __call__(self, job):
        name, images = job
        for kind, img in images.items():
            write_image(self.staging.path(os.path.join(kind, f'{name}.png')), _squeeze(img))

    def close(self, commit):
        pass


class VideoSink:
    """Writes <staging>/<kind>.mp4 or <staging>/<kind>/000000.png ... per output kind."""

    def __init__(self, staging, kinds, video_output_type, fps, size, warn):
        self.staging = staging
        self.sequence = video_output_type == 'png_sequence'
        self.writers = {}
        if not self.sequence:
            try:
                for kind in kinds:
                    self.writers[kind] = VideoFileWriter(staging.path(f'{kind}.mp4'), fps, size)
            except VideoWriteError:
                self.close(commit=False)
                raise
            writer = next(iter(self.writers.values()), None)
            if writer is not None and writer.padded:
                warn(f'mp4 needs an even width and height: the videos are {writer.size[0]}x'
                     f'{writer.size[1]} (last row/column repeated) for {size[0]}x{size[1]} frames; '
                     f'use --video-output-type png_sequence for the exact size')

    def __call__(self, job):
        index, images = job
        for kind, img in images.items():
            if self.sequence:
                write_image(self.staging.path(os.path.join(kind, f'{int(index):06d}.png')), _squeeze(img))
            else:
                self.writers[kind].write(img)

    def close(self, commit):
        for writer in self.writers.values():
            writer.close(commit)


def _squeeze(img):
    return img[:, :, 0] if img.ndim == 3 and img.shape[2] == 1 else img


# ---------------------------------------------------------------------------------------------
# Engine
# ---------------------------------------------------------------------------------------------

def _model_options(config):
    options = {k: getattr(config, k) if getattr(config, k) is not None else v
               for k, v in MODEL_DEFAULTS.items()}
    for key in ('backbone', 'refine_kernel_size'):  # None: what the weights hold
        if getattr(config, key) is not None:
            options[key] = getattr(config, key)
    return options


def load_engine(config, warn):
    """The engine for `config`: an exported model (inference_model) or weights."""
    from utils import engine as engines
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
    """utils.engine.create_engine, with its errors turned into one-line PredictErrors."""
    from utils.convert_weights import CheckpointError
    from utils.engine import create_engine
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


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------

def default_output_types(mode, video_output_type):
    # An mp4 has no alpha channel, so 'com' (RGBA) only exists as images.
    if mode == 'video' and video_output_type == 'video':
        return ['pha', 'fgr', 'new']
    return ['pha', 'fgr', 'com', 'new']


def check_config(config, mode):
    """Option checks that need no file access beyond the mode; raises UsageError."""
    kinds = config.output_types or default_output_types(mode, config.video_output_type)
    unknown = [k for k in kinds if k not in OUTPUT_KINDS]
    if unknown:
        raise UsageError(f'unknown output type {unknown[0]!r}; choose from {", ".join(OUTPUT_KINDS)}')
    if mode == 'video' and config.video_output_type == 'video' and 'com' in kinds:
        raise UsageError("output type 'com' needs an alpha channel, which mp4 has not; use "
                         "--video-output-type png_sequence, or 'new' for a composite on a colour")
    if config.video_output_type not in VIDEO_OUTPUT_TYPES:
        raise UsageError(f'--video-output-type must be one of {", ".join(VIDEO_OUTPUT_TYPES)}')
    if config.precision == 'float16' and config.device != 'gpu':
        raise UsageError('--precision float16 runs on the GPU only; add --device gpu or use float32')
    if config.batch_size < 1:
        raise UsageError('--batch-size must be at least 1')
    if config.resize is not None and (len(config.resize) != 2 or min(config.resize) < 1):
        raise UsageError('--resize takes WIDTH HEIGHT, both positive')
    if config.backbone_scale is not None and not 0 < config.backbone_scale <= 0.5:
        raise UsageError(f'--backbone-scale must be in (0, 0.5], got {config.backbone_scale}')
    if config.refine_sample_pixels is not None and config.refine_sample_pixels < 16:
        raise UsageError('--refine-sample-pixels must be at least 16 (one 4x4 patch)')
    if config.refine_threshold is not None and not 0 <= config.refine_threshold <= 1:
        raise UsageError('--refine-threshold must be in [0, 1] (the error map is)')
    if config.engine not in ENGINES:
        raise UsageError(f'--engine must be one of {", ".join(ENGINES)}')
    if not config.inference_model and not config.weights:
        raise UsageError('no weights: pass --weights (a .pdparams or an official .pth) or '
                         '--inference-model DIR')
    return list(dict.fromkeys(kinds))  # drop repeats, keep order


def _image_items(pairs, config, target, aligner):
    """Read each pair (in the prefetch thread) and prepare it for the network."""
    for name, src_path, bgr_path in pairs:
        src = read_image(src_path)
        bgr = read_image(bgr_path)
        if config.resize:
            src = resize_image(src, tuple(config.resize))
            bgr = resize_image(bgr, tuple(config.resize))
        bgr = _fit_plate(src, bgr, src_path, bgr_path, config.resize_bgr)
        if aligner:
            bgr = aligner(src, bgr, src_path)
        yield Item(name, src_path, src, bgr,
                   target.for_image(src.shape[1], src.shape[0]) if target else None)


def _video_items(reader, config, target, aligner):
    """Frames of the source video with their plates (a still image or a background video)."""
    size = tuple(config.resize) if config.resize else (reader.width, reader.height)
    targets = target.frames(*size) if target else itertools.repeat(None)
    if is_video_file(config.bgr):
        plate_reader = VideoReader(config.bgr)
        try:
            yield from _video_frames(reader, iter(plate_reader), config, size, targets, aligner)
        finally:
            plate_reader.close()
    else:
        plate = read_image(config.bgr)
        if config.resize:
            plate = resize_image(plate, size)
        yield from _video_frames(reader, itertools.repeat(plate), config, size, targets, aligner)


def _video_frames(reader, plates, config, size, targets, aligner):
    fitted = None
    for index, src in enumerate(reader):
        label = f'{config.src} frame {index}'
        if config.resize:
            src = resize_image(src, size)
        bgr = next(plates, None)
        if bgr is None:
            raise PredictError(f'{config.bgr}: background video ended at frame {index}, before '
                               f'the source {config.src}; use a background video at least as '
                               f'long, or a background image')
        if config.resize and is_video_file(config.bgr):
            bgr = resize_image(bgr, size)
        if fitted is None or is_video_file(config.bgr):  # a still plate is fitted once
            fitted = _fit_plate(src, bgr, config.src, config.bgr, config.resize_bgr)
        bgr = fitted
        if aligner:
            bgr = aligner(src, bgr, label)
        yield Item(index, label, src, bgr, next(targets))


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
    warn = config.warn or _warn_to_stderr
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


def _check_background_video(config, reader):
    """A background video must last as long as the source (when both report their length)."""
    if not is_video_file(config.bgr):
        return
    plate = VideoReader(config.bgr)
    plate.close()
    if reader.frame_count and plate.frame_count and plate.frame_count < reader.frame_count:
        raise PredictError(f'{config.bgr}: background video has {plate.frame_count} frames, fewer '
                           f'than the {reader.frame_count} of {config.src}; use a background '
                           f'video at least as long, or a background image')


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
