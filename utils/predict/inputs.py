"""predict.py's inputs: image pairs matched by name, videos and their plates, as `Item`s."""
import itertools
import math
import os
from dataclasses import dataclass

import numpy as np

from model.options import BASE_MIN_SIDE
from utils.image_io import is_image_file, list_images, read_image
from utils.predict.alignment import align_background
from utils.predict.compose import resize_image
from utils.predict.options import PredictError, UsageError
from utils.video_io import VideoReader, is_video_file

@dataclass
class Item:
    """One unit of work: a source image/frame, its plate, its new background (for 'new')."""
    name: str          # output name: image stem, or frame index for videos
    label: str         # how messages refer to it (a file name, 'frame 12 of X')
    src: np.ndarray
    bgr: np.ndarray
    target: object = None


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def _check_unique_stems(paths):
    """Outputs are named after the input's stem: two inputs of one stem would collide."""
    seen = {}
    for path in paths:
        if _stem(path) in seen:
            raise PredictError(f'{path}: same name as {seen[_stem(path)]}, so their outputs would '
                               f'collide; rename one of them')
        seen[_stem(path)] = path


def find_image_pairs(src, bgr):
    """(name, src_path, bgr_path) for an image pair, two folders (matched by file name without
    extension) or a folder of sources sharing one plate."""
    if os.path.isfile(src):
        if os.path.isdir(bgr):
            raise UsageError(f'{bgr}: a folder, but --src is a single image; pass one background '
                             f'image as --bgr')
        return [(_stem(src), src, bgr)]
    sources = [os.path.join(src, name) for name in list_images(src)]
    if not sources:
        raise PredictError(f'{src}: no images found (.png, .jpg, ...); check --src')
    _check_unique_stems(sources)
    if not os.path.isdir(bgr):
        return [(_stem(p), p, bgr) for p in sources]  # one plate for every image
    plates = {}
    for path in (os.path.join(bgr, name) for name in list_images(bgr)):
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


def list_videos(folder):
    """Names of the video files in `folder` (by extension), sorted."""
    return sorted(n for n in os.listdir(folder)
                  if is_video_file(n) and os.path.isfile(os.path.join(folder, n)))


def input_mode(src, bgr):
    """'images', 'video' or 'videos' (a folder of videos), after checking that the inputs exist
    and fit together."""
    for option, path in (('--src', src), ('--bgr', bgr)):
        if not os.path.exists(path):
            raise PredictError(f'{path}: no such file or folder; check {option}')
    if os.path.samefile(src, bgr):
        raise UsageError(f'{src}: given as both --src and --bgr; the background must be a separate '
                         f'picture of the scene without the subject (the clean plate)')
    if os.path.isdir(src) and list_videos(src):
        if list_images(src):
            raise UsageError(f'{src}: holds both images and videos; put them in separate folders '
                             f'and run each')
        return 'videos'
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


def fit_plate(src, bgr, src_label, bgr_label, resize_bgr):
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


def find_video_clips(src, bgr):
    """(name, src_video, plate) per video of the folder `src`: the plate of the same name
    (extension aside, image or video) in the folder `bgr`, or the one plate file `bgr`."""
    clips = [os.path.join(src, name) for name in list_videos(src)]
    _check_unique_stems(clips)
    if os.path.isfile(bgr):
        return [(_stem(c), c, bgr) for c in clips]
    plates = {}
    for name in list_images(bgr) + list_videos(bgr):
        plates.setdefault(_stem(name), []).append(os.path.join(bgr, name))
    found = []
    for clip in clips:
        candidates = plates.get(_stem(clip), [])
        if len(candidates) != 1:
            problem = (f'no background of the same name in {bgr}; add {os.path.join(bgr, _stem(clip))}.png '
                       f'(or a video) or remove the clip' if not candidates else
                       f'several backgrounds match it ({", ".join(candidates)}); keep one')
            raise PredictError(f'{clip}: {problem}')
        found.append((_stem(clip), clip, candidates[0]))
    return found


def check_size(width, height, label, backbone_scale):
    """A one-line error for an image too small for the base network at `backbone_scale`."""
    needed = math.ceil(BASE_MIN_SIDE / backbone_scale)
    if min(width, height) < needed:
        raise PredictError(
            f'{label}: {width}x{height} is too small; at backbone scale {backbone_scale:g} the shorter '
            f'side needs at least {needed} pixels (the base network sees {backbone_scale:g}x the image '
            f'and needs {BASE_MIN_SIDE}); use a larger image or --resize')


def _read_source(path, warn):
    """The RGB of a source image; a warning when its alpha channel has transparency (ignored)."""
    rgba = read_image(path, mode='rgba')
    if float(rgba[:, :, 3].min()) < 1.0:
        warn(f'{path}: the alpha channel is ignored (the network mattes the RGB as it is); '
             f'flatten the image first if its transparent parts should not be seen')
    return np.ascontiguousarray(rgba[:, :, :3])


def _image_items(pairs, config, target, aligner, warn):
    """Read each pair (in the prefetch thread) and prepare it for the network."""
    for name, src_path, bgr_path in pairs:
        src = _read_source(src_path, warn)
        bgr = read_image(bgr_path)
        if config.resize:
            src = resize_image(src, tuple(config.resize))
            bgr = resize_image(bgr, tuple(config.resize))
        bgr = fit_plate(src, bgr, src_path, bgr_path, config.resize_bgr)
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
            fitted = fit_plate(src, bgr, config.src, config.bgr, config.resize_bgr)
        bgr = fitted
        if aligner:
            bgr = aligner(src, bgr, label)
        yield Item(index, label, src, bgr, next(targets))


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
