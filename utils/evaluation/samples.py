"""Ground truth of the evaluation: samples in one of two layouts, matched by name.

* PhotoMatte85 (`photomatte85_samples`): one folder of RGBA PNGs, ``<name>.png``; the
  colour channels are the foreground, the alpha channel the matte.
* pha/fgr folders (`folder_samples`, used for AIM, Distinctions, ...): ``<dir>/pha/<name>``
  (gray matte) and ``<dir>/fgr/<name>`` (RGB foreground), matched by file name stem.
"""
import os
from dataclasses import dataclass

import numpy as np

from utils.image_io import list_images, read_image

class EvaluationError(Exception):
    """Bad evaluation input (missing folder, unmatched names, size mismatch, ...). The
    message says what is wrong and what to do; eval.py prints it without a traceback."""


# ---------------------------------------------------------------------------- inputs


@dataclass
class Sample:
    """One ground-truth item: a name and how to load its matte and foreground."""
    name: str
    pha_path: str
    fgr_path: str = None  # None: the foreground comes from the RGBA file at pha_path, or there is none
    rgba: bool = False

    def load(self):
        """Return (pha (H, W), fgr (H, W, 3) or None) as float32 in [0, 1]."""
        if self.rgba:
            rgba = read_image(self.pha_path, 'rgba')
            if float(rgba[:, :, 3].min()) == 1.0:
                raise EvaluationError(
                    f'{self.pha_path}: has no transparent pixels; PhotoMatte85 foregrounds must be '
                    f'RGBA PNGs with the matte in the alpha channel')
            return rgba[:, :, 3], np.ascontiguousarray(rgba[:, :, :3])
        pha = read_image(self.pha_path, 'gray')
        fgr = read_image(self.fgr_path, 'rgb') if self.fgr_path else None
        if fgr is not None and fgr.shape[:2] != pha.shape:
            raise EvaluationError(f'{self.fgr_path}: size {fgr.shape[1]}x{fgr.shape[0]} differs from '
                                  f'its matte {self.pha_path} ({pha.shape[1]}x{pha.shape[0]})')
        return pha, fgr


def images_by_stem(folder, what):
    """Map file-name stem -> path for the images directly in `folder`.

    Raises EvaluationError if the folder is missing or has no images, or if two files
    share a stem (e.g. a.png and a.jpg), since names are how files are matched.
    """
    if not os.path.isdir(folder):
        raise EvaluationError(f'{what} folder {folder!r} does not exist')
    found = {}
    for entry in list_images(folder):
        path = os.path.join(folder, entry)
        stem = os.path.splitext(entry)[0]
        if stem in found:
            raise EvaluationError(f'{what} folder {folder!r} has two images named {stem!r} '
                                  f'({os.path.basename(found[stem])} and {entry}); keep one')
        found[stem] = path
    if not found:
        raise EvaluationError(f'{what} folder {folder!r} contains no images')
    return found


def _unmatched_message(left_name, left, right_name, right, limit=10):
    def show(names):
        names = sorted(names)
        more = f' ... and {len(names) - limit} more' if len(names) > limit else ''
        return ', '.join(names[:limit]) + more
    parts = []
    if left - right:
        parts.append(f'in {left_name} but not in {right_name}: {show(left - right)}')
    if right - left:
        parts.append(f'in {right_name} but not in {left_name}: {show(right - left)}')
    return '; '.join(parts)


def match_names(left_name, left, right_name, right):
    """Raise EvaluationError listing the names that are in only one of two name sets."""
    left, right = set(left), set(right)
    if left != right:
        raise EvaluationError('file names do not match: ' +
                              _unmatched_message(left_name, left, right_name, right))


def photomatte85_samples(data_dir):
    """Samples of a PhotoMatte85-layout folder: RGBA PNGs, alpha channel = matte."""
    return [Sample(name, path, rgba=True)
            for name, path in images_by_stem(data_dir, 'PhotoMatte85 (RGBA foregrounds)').items()]


def folder_samples(gt_dir, require_fgr=False):
    """Samples of a pha/fgr-layout folder (``gt_dir/pha``, ``gt_dir/fgr``).

    The fgr folder is optional unless `require_fgr` (compositing needs foregrounds); without
    it FG-MSE is not computed.
    """
    if not os.path.isdir(gt_dir):
        raise EvaluationError(f'ground-truth folder {gt_dir!r} does not exist')
    phas = images_by_stem(os.path.join(gt_dir, 'pha'), 'ground-truth alpha (pha)')
    fgr_dir = os.path.join(gt_dir, 'fgr')
    if not os.path.isdir(fgr_dir):
        if require_fgr:
            raise EvaluationError(f'{fgr_dir!r} does not exist: compositing needs the true foregrounds')
        return [Sample(name, path) for name, path in phas.items()]
    fgrs = images_by_stem(fgr_dir, 'ground-truth foreground (fgr)')
    match_names(os.path.join(gt_dir, 'pha'), phas, fgr_dir, fgrs)
    return [Sample(name, path, fgrs[name]) for name, path in phas.items()]
