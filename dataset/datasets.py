"""Datasets: folders of images, videos, zipped and sampled datasets, and the official recipe.

All datasets are ``paddle.io.Dataset`` subclasses that return float32 numpy arrays, so they
work with ``paddle.io.DataLoader`` (which stacks them into tensors). Images come out HWC in
[0, 1] unless a transform (e.g. ``augmentation.ToCHW``) changes that; ``matting_dataset``
builds the official training pipeline, which returns CHW (pha (1,H,W), fgr (3,H,W),
bgr (3,H,W)).

Reproducible randomness
-----------------------
A random transform must not use global random state: with DataLoader workers that state is
copied into every worker (so workers repeat each other) and it cannot be replayed after a
restart. Instead, ``SeededDataset.__getitem__(idx)`` builds a ``numpy.random.Generator``
from ``(seed, epoch, idx)`` and hands it to ``get(idx, rng)``. The same sample, epoch and
seed always get the same augmentation, whatever the worker or the order, so a resumed run
sees exactly the data of an uninterrupted one. Call ``set_epoch(e)`` before iterating
epoch ``e`` (before the DataLoader iterator is created, since workers take a copy) to draw
new augmentations each epoch; leave validation datasets at epoch 0 so their samples never
change and validation losses stay comparable. A ``ZipDataset`` splits its Generator into
independent child Generators (``Generator.spawn``) for its members, so e.g. the background
is not flipped whenever the foreground is.
"""
import os

import cv2
import numpy as np
import paddle

from utils.image_io import read_image, list_images, write_image, IMAGE_EXTENSIONS
from . import augmentation as A
from .data_path import resolve

__all__ = ['SeededDataset', 'ImagesDataset', 'VideoDataset', 'ZipDataset', 'SampleDataset',
           'matting_dataset', 'split_rgba_folder']


def _get(dataset, idx, rng):
    """Fetch from a child dataset, passing our Generator down when it can take one."""
    if isinstance(dataset, SeededDataset):
        return dataset.get(idx, rng)
    return dataset[idx]


class SeededDataset(paddle.io.Dataset):
    """Base class: per-sample Generators seeded from (seed, epoch, index).

    Subclasses implement ``__len__`` and ``get(idx, rng)``; ``__getitem__`` checks the index
    (negative indices count from the end) and seeds the Generator. ``set_epoch`` propagates
    to child datasets listed by ``children()``.
    """

    def __init__(self, seed=0):
        super().__init__()
        self.seed = int(seed)
        self.epoch = 0

    def children(self):
        return []

    def set_epoch(self, epoch):
        """Select the augmentation draw of epoch `epoch` (here and in child datasets)."""
        self.epoch = int(epoch)
        for child in self.children():
            if hasattr(child, 'set_epoch'):
                child.set_epoch(epoch)

    def rng_for(self, idx):
        """The Generator of sample `idx` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, int(idx)])

    def get(self, idx, rng):
        raise NotImplementedError

    def __getitem__(self, idx):
        n = len(self)
        idx = int(idx)
        if idx < 0:
            idx += n
        if not 0 <= idx < n:
            raise IndexError(f'{type(self).__name__}: index {idx} out of range for length {n}')
        return self.get(idx, self.rng_for(idx))

    def describe(self):
        """Short human-readable description used in error messages."""
        return f'{type(self).__name__} of {len(self)} samples'


class ImagesDataset(SeededDataset):
    """All images of a folder (recursively, sorted by relative path).

    mode='RGB' -> (H, W, 3), 'L' -> (H, W, 1) (an alpha matte; RGBA mattes give their
    alpha), 'RGBA' -> (H, W, 4); float32 in [0, 1]. `transforms` (a
    ``augmentation.Transform``, called on a one-image list) may change the shape, e.g.
    ToCHW. A corrupt file raises ``utils.image_io.ImageReadError`` naming its path.

    Raises FileNotFoundError if `root` is not a folder and ValueError if it holds no image.
    """

    _MODES = {'rgb': 'rgb', 'l': 'gray', 'gray': 'gray', 'rgba': 'rgba'}

    def __init__(self, root, mode='RGB', transforms=None, seed=0):
        super().__init__(seed)
        if mode.lower() not in self._MODES:
            raise ValueError(f"ImagesDataset: mode must be 'RGB', 'L' or 'RGBA', got {mode!r}")
        if not os.path.isdir(root):
            raise FileNotFoundError(f'ImagesDataset: folder {root} does not exist')
        self.root = root
        self.mode = mode
        self.transforms = transforms
        self.files = list_images(root, recursive=True)
        if not self.files:
            raise ValueError(f'ImagesDataset: no images ({", ".join(IMAGE_EXTENSIONS)}) under {root}')

    def __len__(self):
        return len(self.files)

    def path(self, idx):
        """Full path of image `idx`."""
        return os.path.join(self.root, self.files[idx])

    def get(self, idx, rng):
        img = read_image(self.path(idx), self._MODES[self.mode.lower()])
        if img.ndim == 2:
            img = img[:, :, None]
        if self.transforms is not None:
            img = self.transforms([img], rng)[0]
        return img

    def describe(self):
        return f'{self.root} ({len(self)} images)'


class VideoDataset(SeededDataset):
    """Frames of a video file, read with OpenCV: frame i -> (H, W, 3) float32 RGB in [0, 1].

    Attributes width, height, frame_rate, frame_count. The capture is opened lazily in each
    process (a VideoCapture cannot be shared with DataLoader workers) and reading frames in
    order avoids seeking. Use as a context manager or call close() to release the file.
    Raises FileNotFoundError for a missing file and ValueError for an unreadable one.
    """

    def __init__(self, path, transforms=None, seed=0):
        super().__init__(seed)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'VideoDataset: {path}: no such file')
        self.path = path
        self.transforms = transforms
        self._cap = None
        self._pid = None
        self._next = 0
        cap = self._capture()
        self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.frame_rate = float(cap.get(cv2.CAP_PROP_FPS))
        self.frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if self.frame_count <= 0:
            # Some containers do not store a frame count: count by decoding once.
            count = 0
            while cap.grab():
                count += 1
            self.frame_count = count
            self._reopen()
        if self.frame_count <= 0:
            raise ValueError(f'VideoDataset: {self.path}: the video has no readable frames')

    def _capture(self):
        if self._cap is None or self._pid != os.getpid():
            cap = cv2.VideoCapture(self.path)
            if not cap.isOpened():
                raise ValueError(f'VideoDataset: {self.path}: not a readable video '
                                 f'(corrupt, or a codec OpenCV lacks); convert it to H.264 MP4')
            self._cap, self._pid, self._next = cap, os.getpid(), 0
        return self._cap

    def _reopen(self):
        self.close()
        return self._capture()

    def __len__(self):
        return self.frame_count

    def get(self, idx, rng):
        cap = self._capture()
        if idx != self._next:
            cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
        ok, frame = cap.read()
        if not ok or frame is None:
            self._next = -1
            raise ValueError(f'VideoDataset: {self.path}: could not decode frame {idx} of {len(self)}')
        self._next = idx + 1
        img = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
        if self.transforms is not None:
            img = self.transforms([img], rng)[0]
        return img

    def close(self):
        if self._cap is not None:
            self._cap.release()
        self._cap = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state['_cap'] = None  # reopened in the receiving process
        return state

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def describe(self):
        return f'{self.path} ({len(self)} frames)'


class ZipDataset(SeededDataset):
    """Zip datasets: item i = (d0[i % len(d0)], d1[i % len(d1)], ...), optionally transformed.

    Length is the longest member's; shorter members wrap around (e.g. fewer backgrounds
    than foregrounds). `transforms` is called as ``transforms(list_of_items, rng)`` and must
    return the new items, e.g. a pair augmentation of (pha, fgr). With
    assert_equal_length=True members of different lengths raise ValueError naming each
    member and its count (a pha folder with a missing or extra file would otherwise pair
    every later matte with the wrong foreground).
    """

    def __init__(self, datasets, transforms=None, assert_equal_length=False, seed=0):
        super().__init__(seed)
        self.datasets = list(datasets)
        self.transforms = transforms
        if not self.datasets:
            raise ValueError('ZipDataset needs at least one dataset')
        if assert_equal_length and len({len(d) for d in self.datasets}) > 1:
            members = '; '.join(f'{_describe(d)}: {len(d)}' for d in self.datasets)
            raise ValueError(f'ZipDataset: datasets differ in length ({members}). '
                             f'Paired folders (pha/fgr) must hold the same files.')

    def children(self):
        return self.datasets

    def __len__(self):
        return max(len(d) for d in self.datasets)

    def get(self, idx, rng):
        rngs = rng.spawn(len(self.datasets) + 1)
        items = [_get(d, idx % len(d), r) for d, r in zip(self.datasets, rngs)]
        if self.transforms is not None:
            try:
                items = self.transforms(items, rngs[-1])
            except ValueError as e:  # say which files the bad sample came from
                sources = ', '.join(_item_name(d, idx % len(d)) for d in self.datasets)
                raise ValueError(f'{e} (sample {idx}: {sources})') from e
        return tuple(items)


def _describe(dataset):
    return dataset.describe() if hasattr(dataset, 'describe') else f'{type(dataset).__name__}'


def _item_name(dataset, idx):
    """The file behind item idx when known (ImagesDataset), else the dataset's description."""
    return dataset.path(idx) if isinstance(dataset, ImagesDataset) else _describe(dataset)


class SampleDataset(SeededDataset):
    """A fixed subset of `samples` items spread evenly over `dataset` (e.g. 50 for validation).

    Items are the same shape as the wrapped dataset's. The wrapped dataset's randomness is
    driven by this dataset's seed/epoch, so a validation subset left at epoch 0 is identical
    every time it is evaluated.
    """

    def __init__(self, dataset, samples, seed=0):
        super().__init__(seed)
        n = len(dataset)
        samples = min(int(samples), n)
        self.dataset = dataset
        self.indices = [i * n // samples for i in range(samples)]

    def children(self):
        return [self.dataset]

    def __len__(self):
        return len(self.indices)

    def get(self, idx, rng):
        return _get(self.dataset, self.indices[idx], rng)


def _flatten_pair_and_background(items, rng):
    """((pha, fgr), bgr) -> (pha, fgr, bgr): a flat triple is simpler for the training loop."""
    (pha, fgr), bgr = items
    return pha, fgr, bgr


def matting_dataset(name, split, size=(512, 512), table=None, seed=0, fgr_scale=None, samples=None):
    """The official training/validation dataset of BackgroundMattingV2, from the data-path table.

    Returns a dataset of (pha (1,H,W), fgr (3,H,W), bgr (3,H,W)) float32 in [0, 1] with
    (H, W) = size. split='train' applies the official augmentations: pha/fgr share a random
    affine+resize (scale 0.4-1 of the covering size, or `fgr_scale`), flip, box blur and
    sharpen, and only fgr gets colour jitter; backgrounds get their own affine (scale 1-2),
    flip, blur, sharpen and jitter. split='valid' only applies the affine+resize (fgr scale
    0.3-1, background 1-1.2). One deliberate difference from the official code: the
    background's affine mirrors the image into uncovered corners instead of filling black.
    `table` is a table from data_path.load_data_path (default:
    built-in paths under data/); missing folders raise data_path.DataPathError naming the
    table entry. `samples` wraps the result in SampleDataset (the official validation uses 50).
    """
    paths = resolve(name, split, table)
    bgr_root = resolve('backgrounds', split, table)
    train = split == 'train'
    if fgr_scale is None:
        fgr_scale = (0.4, 1.0) if train else (0.3, 1.0)
    pair_steps = [A.RandomAffineAndResize(size, degrees=(-5, 5), translate=(0.1, 0.1), scale=fgr_scale,
                                          shear=(-5, 5))]
    bgr_steps = [A.RandomAffineAndResize(size, degrees=(-5, 5), translate=(0.1, 0.1),
                                         scale=(1, 2) if train else (1, 1.2), shear=(-5, 5), border='reflect')]
    if train:
        pair_steps += [A.RandomHorizontalFlip(), A.RandomBoxBlur(0.1, 5), A.RandomSharpen(0.1),
                       A.ApplyOnlyAtIndices([1], A.ColorJitter(0.15, 0.15, 0.15, 0.05))]
        bgr_steps += [A.RandomHorizontalFlip(), A.RandomBoxBlur(0.1, 5), A.RandomSharpen(0.1),
                      A.ColorJitter(0.15, 0.15, 0.15, 0.05)]
    pair = ZipDataset([ImagesDataset(paths['pha'], mode='L'), ImagesDataset(paths['fgr'], mode='RGB')],
                      transforms=A.Compose(pair_steps + [A.ToCHW()]), assert_equal_length=True)
    bgr = ImagesDataset(bgr_root, mode='RGB', transforms=A.Compose(bgr_steps + [A.ToCHW()]))
    dataset = ZipDataset([pair, bgr], transforms=_flatten_pair_and_background, seed=seed)
    if samples is not None:
        dataset = SampleDataset(dataset, samples, seed=seed)
    return dataset


def split_rgba_folder(src_dir, fgr_dir, pha_dir):
    """Split RGBA images (e.g. the PhotoMatte85 release) into fgr/ (RGB PNG) and pha/ (gray PNG).

    Keeps the relative layout and file stems so the two folders pair up. Returns the count.
    """
    files = list_images(src_dir, recursive=True)
    for rel in files:
        rgba = read_image(os.path.join(src_dir, rel), 'rgba')
        stem = os.path.splitext(rel)[0] + '.png'
        write_image(os.path.join(fgr_dir, stem), rgba[:, :, :3])
        write_image(os.path.join(pha_dir, stem), rgba[:, :, 3])
    return len(files)
