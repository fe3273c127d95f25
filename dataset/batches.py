"""Training and validation batches: datasets from the data-path table or synthetic data, batched
and augmented per step so that every batch is a pure function of (seed, epoch, batch index).

Why batches are built inside a Dataset (``MattingBatches``) rather than by the DataLoader's
sampler: the official loop draws one random crop size per *step* and augments the whole
batch with it (shadow, noise, plate jitter, ...). Doing that here, in the DataLoader workers,
keeps the augmentation off the training process's critical path, and seeding it from
(seed, epoch, batch index) instead of a global RNG makes a resumed run see exactly the
batches an uninterrupted run would have seen, whatever the number of workers. The
DataLoader is used with ``batch_size=None`` (one item = one ready batch).
"""
import os

import numpy as np
import paddle

__all__ = ['SYNTHETIC', 'REAL', 'GENERATED', 'VALID_SEED', 'as_triple', 'BatchAugment', 'MattingBatches', 'build_datasets']

SYNTHETIC = 'synthetic'
# Scenes made of real photographs (dataset/real.py) fetched by `python -m dataset.prepare`
# into <data root>/REAL_PHOTOS.
REAL = 'real'
REAL_PHOTOS = 'real_photos'
# Data sets generated on the fly (no data-path table entry)
GENERATED = (SYNTHETIC, REAL)
# Validation data is drawn with this seed, whatever --seed is, so that validation numbers of
# different runs are computed on the very same images and are comparable.
VALID_SEED = 0
# Extra SeedSequence word that separates the per-batch streams from the per-sample streams
# the datasets derive from (seed, epoch, index).
_BATCH_STREAM = 0xBA7C


def as_triple(sample):
    """A dataset item -> (pha (1, H, W), fgr (3, H, W), bgr (3, H, W)) float32 CHW.

    Accepts (pha, fgr, bgr) or the official nesting ((pha, fgr), bgr), in CHW or HWC layout
    (told apart by pha: one channel first means CHW), so any of the project's datasets fits.
    """
    if len(sample) == 2:
        (pha, fgr), bgr = sample
    else:
        pha, fgr, bgr = sample
    pha, fgr, bgr = (np.asarray(x, dtype=np.float32) for x in (pha, fgr, bgr))
    if pha.ndim == 2:
        pha = pha[None]
        fgr, bgr = fgr.transpose(2, 0, 1), bgr.transpose(2, 0, 1)
    elif pha.shape[0] != 1:  # HWC
        pha, fgr, bgr = (x.transpose(2, 0, 1) for x in (pha, fgr, bgr))
    return pha, fgr, bgr


class BatchAugment:
    """Per-step augmentation of a batch: (pha, fgr, bgr) -> (src, bgr, pha, fgr).

    Args:
        crop: (min, max) side of the per-step random crop, or None to keep the size.
        extra: also apply the dataset package's additions to the official recipe (plate
            exposure change, JPEG artifacts); False is the official recipe: random crop,
            shadow (p=0.3), noise (p=0.4), plate colour jitter (p=0.8), plate affine (p=0.3).
        plate_change: strengths of the plate jitter, shake, exposure change and sensor noise, a
            key of ``dataset.augmentation.PLATE_CHANGES`` ('official', 'light' or 'locked').
        shadow_prob: how often a sample's background gets a cast shadow; None: the official
            ``dataset.augmentation.SHADOW_PROB``.
    Inputs/outputs are NCHW float32 numpy arrays in [0, 1]; see `dataset.augmentation.augment_batch`.
    """

    def __init__(self, crop, extra=False, plate_change='official', shadow_prob=None):
        self.crop = tuple(crop) if crop is not None else None
        self.extra = extra
        self.plate_change = plate_change
        self.shadow_prob = shadow_prob

    def __call__(self, pha, fgr, bgr, rng):
        from dataset.augmentation import augment_batch
        extra = {} if self.extra else {'exposure_prob': 0.0, 'jpeg_prob': 0.0}
        if self.shadow_prob is not None:
            extra['shadow_prob'] = self.shadow_prob
        return augment_batch(pha, fgr, bgr, rng, crop=self.crop, plate_change=self.plate_change, **extra)

    def __repr__(self):
        return (f'BatchAugment(crop={self.crop}, extra={self.extra}, plate_change={self.plate_change!r}, '
                f'shadow_prob={self.shadow_prob})')


class MattingBatches(paddle.io.Dataset):
    """Item i = batch i of the current epoch: (src, bgr, pha, fgr) as NCHW float32 arrays.

    Args:
        dataset: items (pha, fgr, bgr) (see `as_triple`), all of one size.
        batch_size: samples per batch *of this process*.
        seed: seeds the sample order (per epoch) and the per-batch augmentation.
        shuffle: a new permutation of the dataset per epoch; False takes the samples in order.
        augment: callable (pha, fgr, bgr, rng) -> (src, bgr, pha, fgr), e.g. `BatchAugment`;
            None composites src = fgr * pha + bgr * (1 - pha) without any change (validation).
        drop_last: drop the last incomplete batch (training) or keep it (validation).
        rank, world_size: this process's share in data-parallel training: global batch b is
            split into world_size consecutive parts of batch_size samples, part `rank` is ours.

    Call `set_epoch(epoch, start)` before creating the DataLoader iterator (workers copy the
    dataset when the iterator starts): item i is then batch start + i of that epoch.
    """

    def __init__(self, dataset, batch_size, seed=0, shuffle=True, augment=None, drop_last=True,
                 rank=0, world_size=1):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f'batch size must be at least 1, got {batch_size}')
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.augment = augment
        self.drop_last = drop_last
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0
        self.start = 0

    @property
    def batches_per_epoch(self):
        """Number of (global) batches in one epoch."""
        total = self.batch_size * self.world_size
        n = len(self.dataset)
        return n // total if self.drop_last else -(-n // total)

    def set_epoch(self, epoch, start=0):
        """Iterate epoch `epoch` from batch `start` on (also selects the dataset's epoch draw)."""
        self.epoch = int(epoch)
        self.start = int(start)
        if hasattr(self.dataset, 'set_epoch'):
            self.dataset.set_epoch(self.epoch)

    def __len__(self):
        return max(0, self.batches_per_epoch - self.start)

    def indices(self, batch):
        """Dataset indices of global batch `batch` of the current epoch that this rank loads."""
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch, _BATCH_STREAM]).permutation(n)
        else:
            order = np.arange(n)
        first = (batch * self.world_size + self.rank) * self.batch_size
        return order[first:first + self.batch_size]

    def __getitem__(self, i):
        batch = self.start + int(i)
        if not 0 <= batch < self.batches_per_epoch:
            raise IndexError(f'batch {batch} out of range for {self.batches_per_epoch} batches per epoch')
        samples = [as_triple(self.dataset[int(j)]) for j in self.indices(batch)]
        pha, fgr, bgr = (np.stack(x) for x in zip(*samples))
        if self.augment is None:
            src = fgr * pha + bgr * (1.0 - pha)
            return src, bgr, pha, fgr
        rng = np.random.default_rng([self.seed, self.epoch, batch, self.rank, _BATCH_STREAM])
        src, bgr, pha, fgr = self.augment(pha, fgr, bgr, rng)
        return tuple(np.ascontiguousarray(x, dtype=np.float32) for x in (src, bgr, pha, fgr))


def build_datasets(name, sample_size, valid_samples, seed=0, table=None, synthetic_length=256, data_root=None,
                   real_kinds=''):
    """The training dataset and the fixed validation subset of data set `name`.

    Args:
        name: a data set of the data-path table (e.g. 'videomatte240k', 'photomatte13k',
            'distinction'), 'synthetic' (procedural data, no download) or 'real' (scenes made
            of the photographs that `python -m dataset.prepare` fetches).
        sample_size: (H, W) of the samples (before the per-step random crop).
        valid_samples: size of the validation subset (the official scripts use 50).
        seed: seed of the training data's per-sample augmentation.
        table: data-path table from `dataset.data_path.load_data_path` (default: built-in paths).
        synthetic_length: number of training samples per epoch of 'synthetic' or 'real'.
        data_root: folder holding REAL_PHOTOS (default: dataset.data_path.DATA_ROOT).
        real_kinds: 'real' only: the training scenes' foreground mix, 'KIND=WEIGHT,...' over
            `dataset.real.KINDS` ('' keeps it); the validation scenes keep KINDS, so that their
            losses compare across runs.
    Returns:
        (train, valid) datasets of (pha (1,H,W), fgr (3,H,W), bgr (3,H,W)).
    Raises:
        dataset.data_path.DataPathError naming the DATA_PATH entry of a missing folder.
    """
    if name == SYNTHETIC:
        from dataset.synthetic import SyntheticMattingDataset
        train = SyntheticMattingDataset(synthetic_length, sample_size, seed=seed)
        # A seed the training data never uses: validation scenes are unseen ones.
        valid = SyntheticMattingDataset(valid_samples, sample_size, seed=VALID_SEED + 1_000_003)
        return train, valid
    if name == REAL:
        from dataset.data_path import DATA_ROOT
        from dataset.real import RealPhotoMattingDataset, kind_weights
        root = os.path.join(data_root or DATA_ROOT, REAL_PHOTOS)
        kinds = kind_weights(real_kinds) if real_kinds else None
        train = RealPhotoMattingDataset(synthetic_length, sample_size, root, 'train', seed=seed, kinds=kinds)
        # Validation scenes: other photographs and a seed the training data never uses.
        valid = RealPhotoMattingDataset(valid_samples, sample_size, root, 'valid', seed=VALID_SEED + 1_000_003)
        return train, valid
    from dataset.datasets import matting_dataset
    train = matting_dataset(name, 'train', sample_size, table=table, seed=seed)
    valid = matting_dataset(name, 'valid', sample_size, table=table, seed=VALID_SEED, samples=valid_samples)
    return train, valid


def check_datasets(names, table=None):
    """Raise DataPathError (naming the DATA_PATH entry) unless every data set in `names` and the
    backgrounds have their train and valid folders. Generated data sets need none."""
    from dataset.data_path import resolve
    for name in names:
        if name in GENERATED:
            continue
        for split in ('train', 'valid'):
            resolve(name, split, table)
            resolve('backgrounds', split, table)


def main(argv=None):
    """`python -m dataset.batches [--data-root DIR] NAME...`: check the data folders before training."""
    import argparse
    import sys
    from dataset.data_path import DataPathError, add_data_path_arguments, data_path_from_args
    parser = argparse.ArgumentParser(description='Check that the training data sets are where the '
                                                 'data-path table says (exit 2 naming the entry if not).')
    parser.add_argument('names', nargs='+', help="data set names, e.g. videomatte240k photomatte13k, or 'synthetic'")
    add_data_path_arguments(parser)
    args = parser.parse_args(argv)
    try:
        check_datasets(args.names, data_path_from_args(args))
    except DataPathError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print('data found for: ' + ', '.join(args.names))
    return 0


if __name__ == '__main__':
    import sys
    sys.exit(main())
