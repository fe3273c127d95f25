"""Tests of the dataset package: datasets, augmentations, data paths and synthetic data.

Everything runs on tiny images made on the fly, so the file takes a few seconds.
"""
import argparse
import json
import os

import cv2
import numpy as np
import paddle
import pytest

from dataset import augmentation as A
from dataset.batches import BatchAugment
from dataset import (DataPathError, ImagesDataset, SampleDataset, SyntheticMattingDataset, VideoDataset, ZipDataset,
                     add_data_path_arguments, data_path_from_args, load_data_path, make_sample_pair, matting_dataset,
                     resolve, split_rgba_folder, write_synthetic_dataset)
from dataset.data_path import parse_override
from utils.image_io import ImageReadError, read_image, write_image


def _rng(seed=0):
    return np.random.default_rng(seed)


def _assert_image(x, shape, lo=0.0, hi=1.0):
    assert x.shape == shape
    assert x.dtype == np.float32
    assert np.isfinite(x).all()
    assert x.min() >= lo - 1e-6 and x.max() <= hi + 1e-6


def _rect_pair(h=60, w=80):
    """A matte with a soft-edged off-centre rectangle and a foreground that encodes it in red."""
    pha = np.zeros((h, w, 1), np.float32)
    pha[10:40, 15:50] = 1.0
    pha = cv2.GaussianBlur(pha, (0, 0), 1.5)[:, :, None]
    fgr = np.concatenate([pha, np.full_like(pha, 0.3), np.full_like(pha, 0.6)], axis=2)
    return pha, fgr


@pytest.fixture(scope='module')
def synthetic_root(tmp_path_factory):
    """A small synthetic data set on disk: pha/, fgr/, bgr/ with 5 samples of 48x64."""
    root = str(tmp_path_factory.mktemp('synthetic'))
    write_synthetic_dataset(root, 5, size=(48, 64), seed=3)
    return root


@pytest.fixture(scope='module')
def table(synthetic_root):
    """A data-path table pointing a new data set 'syn' and the backgrounds at synthetic_root."""
    return load_data_path(data_root=synthetic_root, overrides=[
        'syn.train.pha=pha', 'syn.train.fgr=fgr', 'syn.valid.pha=pha', 'syn.valid.fgr=fgr',
        'backgrounds.train=bgr', 'backgrounds.valid=bgr'])


# ---------------------------------------------------------------------------- datasets

def test_images_dataset_sorted_recursive_and_modes(tmp_path):
    for rel in ['b/1.png', 'a/10.png', 'a/2.jpg', 'c.png']:
        write_image(str(tmp_path / rel), np.full((6, 8, 3), 0.5, np.float32))
    (tmp_path / 'a' / 'notes.txt').write_text('not an image')
    rgb = ImagesDataset(str(tmp_path), mode='RGB')
    assert rgb.files == ['a/10.png', 'a/2.jpg', 'b/1.png', 'c.png']
    assert len(rgb) == 4
    _assert_image(rgb[0], (6, 8, 3))
    gray = ImagesDataset(str(tmp_path), mode='L')
    _assert_image(gray[-1], (6, 8, 1))
    assert abs(float(gray[-1].mean()) - 0.5) < 0.01
    with pytest.raises(IndexError):
        rgb[4]


def test_images_dataset_missing_empty_and_bad_mode(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        ImagesDataset(str(tmp_path / 'nowhere'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no images'):
        ImagesDataset(str(tmp_path / 'empty'))
    with pytest.raises(ValueError, match='mode'):
        ImagesDataset(str(tmp_path), mode='CMYK')


def test_corrupt_image_is_reported_with_its_path(tmp_path):
    write_image(str(tmp_path / '0.png'), np.zeros((4, 4, 3), np.float32))
    bad = tmp_path / '1.png'
    bad.write_bytes(b'this is not a png')
    ds = ImagesDataset(str(tmp_path))
    ds[0]
    with pytest.raises(ImageReadError, match=str(bad)):
        ds[1]


def test_zip_dataset_count_mismatch_names_both_folders(tmp_path):
    for i in range(3):
        write_image(str(tmp_path / 'pha' / f'{i}.png'), np.zeros((4, 4), np.float32))
    for i in range(2):
        write_image(str(tmp_path / 'fgr' / f'{i}.png'), np.zeros((4, 4, 3), np.float32))
    pha, fgr = ImagesDataset(str(tmp_path / 'pha'), 'L'), ImagesDataset(str(tmp_path / 'fgr'))
    with pytest.raises(ValueError) as err:
        ZipDataset([pha, fgr], assert_equal_length=True)
    msg = str(err.value)
    assert str(tmp_path / 'pha') in msg and str(tmp_path / 'fgr') in msg
    assert ': 3' in msg and ': 2' in msg
    # Without the check, the shorter member wraps around.
    zipped = ZipDataset([pha, fgr])
    assert len(zipped) == 3
    assert zipped[2][1].shape == (4, 4, 3)


def test_pha_fgr_size_mismatch_names_the_files(tmp_path):
    write_image(str(tmp_path / 'pha' / 'a.png'), np.zeros((8, 8), np.float32))
    write_image(str(tmp_path / 'fgr' / 'a.png'), np.zeros((8, 10, 3), np.float32))
    pair = ZipDataset([ImagesDataset(str(tmp_path / 'pha'), 'L'), ImagesDataset(str(tmp_path / 'fgr'))],
                      transforms=A.RandomAffineAndResize((4, 4)), assert_equal_length=True)
    with pytest.raises(ValueError, match='differ in size.*pha.*a.png.*fgr.*a.png'):
        pair[0]


def test_sample_dataset_spreads_evenly_and_stays_fixed():
    class Numbers(paddle.io.Dataset):
        def __len__(self):
            return 100

        def __getitem__(self, i):
            return i
    sample = SampleDataset(Numbers(), 4)
    assert [sample[i] for i in range(len(sample))] == [0, 25, 50, 75]
    assert len(SampleDataset(Numbers(), 500)) == 100


def test_video_dataset_reads_frames_and_reports_bad_files(tmp_path):
    path = str(tmp_path / 'clip.avi')
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 10, (32, 24))
    if not writer.isOpened():
        pytest.skip('this OpenCV build cannot write MJPG video')
    for i in range(5):
        writer.write(np.full((24, 32, 3), i * 50, np.uint8))
    writer.release()
    with VideoDataset(path) as video:
        assert len(video) == 5 and (video.width, video.height) == (32, 24)
        frames = [video[i] for i in (0, 1, 4, 2)]  # sequential and seeking reads
        for f in frames:
            _assert_image(f, (24, 32, 3))
        assert abs(float(frames[2].mean()) - 200 / 255) < 0.03
    with pytest.raises(FileNotFoundError, match='missing.mp4'):
        VideoDataset(str(tmp_path / 'missing.mp4'))
    bad = tmp_path / 'bad.mp4'
    bad.write_bytes(b'\x00not a video' * 10)
    with pytest.raises(ValueError, match='bad.mp4'):
        VideoDataset(str(bad))


def test_split_rgba_folder(tmp_path):
    rgba = np.zeros((5, 6, 4), np.float32)
    rgba[..., 0] = 1.0
    rgba[1:4, 2:5, 3] = 1.0
    write_image(str(tmp_path / 'src' / 'x.png'), rgba)
    assert split_rgba_folder(str(tmp_path / 'src'), str(tmp_path / 'fgr'), str(tmp_path / 'pha')) == 1
    assert np.allclose(read_image(str(tmp_path / 'pha' / 'x.png'), 'gray'), rgba[..., 3])
    assert np.allclose(read_image(str(tmp_path / 'fgr' / 'x.png'))[..., 0], 1.0)


# ------------------------------------------------------------------ official pipeline

def test_matting_dataset_shapes_determinism_and_dataloader(table):
    ds = matting_dataset('syn', 'train', size=(32, 40), table=table, seed=7)
    assert len(ds) == 5
    pha, fgr, bgr = ds[1]
    _assert_image(pha, (1, 32, 40))
    _assert_image(fgr, (3, 32, 40))
    _assert_image(bgr, (3, 32, 40))
    # Same seed, epoch and index: same augmentation; another epoch: another one.
    again = matting_dataset('syn', 'train', size=(32, 40), table=table, seed=7)[1]
    assert all(np.array_equal(a, b) for a, b in zip(ds[1], again))
    ds.set_epoch(1)
    assert not np.array_equal(ds[1][1], fgr)
    loader = paddle.io.DataLoader(ds, batch_size=2, shuffle=False, num_workers=0, drop_last=True)
    batches = list(loader)
    assert len(batches) == 2
    assert [tuple(x.shape) for x in batches[0]] == [(2, 1, 32, 40), (2, 3, 32, 40), (2, 3, 32, 40)]
    valid = matting_dataset('syn', 'valid', size=(32, 32), table=table, samples=3)
    assert len(valid) == 3 and valid[2][0].shape == (1, 32, 32)


def test_matting_dataset_missing_folder_names_entry(tmp_path):
    table = load_data_path(data_root=str(tmp_path))
    with pytest.raises(DataPathError, match=r"DATA_PATH\['videomatte240k'\]\['train'\]\['pha'\]"):
        matting_dataset('videomatte240k', 'train', table=table)


# -------------------------------------------------------------------------- data paths

def test_resolve_missing_folder_message(tmp_path):
    table = load_data_path(data_root=str(tmp_path))
    with pytest.raises(DataPathError) as err:
        resolve('videomatte240k', 'train', table)
    msg = str(err.value)
    assert "DATA_PATH['videomatte240k']['train']['pha']" in msg
    assert os.path.join(str(tmp_path), 'VideoMatte240K_JPEG_SD', 'train', 'pha') in msg
    assert '--data-path videomatte240k.train.pha=PATH' in msg
    with pytest.raises(DataPathError, match=r"DATA_PATH\['backgrounds'\]\['valid'\]"):
        resolve('backgrounds', 'valid', table)
    with pytest.raises(DataPathError, match='known: .*videomatte240k'):
        resolve('nosuchdata', 'train', table)


def test_data_path_overrides_config_and_arguments(tmp_path):
    (tmp_path / 'p').mkdir()
    (tmp_path / 'f').mkdir()
    config = tmp_path / 'paths.json'
    config.write_text(json.dumps({'data_root': str(tmp_path),
                                  'data_path': {'videomatte240k': {'train': {'pha': 'p'}}}}))
    table = load_data_path(config=str(config), overrides=['videomatte240k.train.fgr=f'])
    assert resolve('videomatte240k', 'train', table) == {'pha': str(tmp_path / 'p'), 'fgr': str(tmp_path / 'f')}
    # Untouched entries keep their defaults under the configured root; absolute paths stay.
    assert table['photomatte13k']['valid']['pha'] == os.path.join(str(tmp_path), 'PhotoMatte13K/valid/pha')
    assert load_data_path(overrides=[f'backgrounds.train={tmp_path}'])['backgrounds']['train'] == str(tmp_path)
    parser = add_data_path_arguments(argparse.ArgumentParser())
    args = parser.parse_args(['--data-root', str(tmp_path), '--data-path', 'new.valid.pha=p',
                              '--data-path', 'new.valid.fgr=f'])
    assert resolve('new', 'valid', data_path_from_args(args))['pha'] == str(tmp_path / 'p')


@pytest.mark.parametrize('bad', ['videomatte240k.train.pha', 'videomatte240k.test.pha=x', 'videomatte240k.train.rgb=x',
                                 'backgrounds.train.pha=x', 'videomatte240k.train=x'])
def test_bad_overrides_are_rejected(bad):
    with pytest.raises(ValueError, match='override'):
        parse_override(bad)


def test_bad_config_file(tmp_path):
    bad = tmp_path / 'bad.json'
    bad.write_text('{not json')
    with pytest.raises(ValueError, match='not valid JSON'):
        load_data_path(config=str(bad))
    with pytest.raises(DataPathError, match='missing.json'):
        load_data_path(config=str(tmp_path / 'missing.json'))


# ---------------------------------------------------------------- per-sample transforms

def test_pair_transforms_keep_pha_and_fgr_aligned():
    pha, fgr = _rect_pair()
    geometric = A.Compose([
        A.RandomAffineAndResize((40, 56), degrees=(-10, 10), translate=(0.1, 0.1), scale=(0.4, 1), shear=(-5, 5)),
        A.RandomHorizontalFlip(), A.RandomBoxBlur(0.5, 3), A.RandomSharpen(0.5),
        A.ApplyOnlyAtIndices([1], A.ColorJitter(0, 0, 0, 0))])
    flipped = 0
    for seed in range(12):
        p, f = geometric([pha, fgr], _rng(seed))
        _assert_image(p, (40, 56, 1))
        _assert_image(f, (40, 56, 3))
        assert np.abs(p[..., 0] - f[..., 0]).max() < 1e-5  # red channel encodes the matte
        flipped += p[:, :28].sum() < p[:, 28:].sum()
    assert 0 < flipped < 12  # the rectangle sits left of centre unless flipped


def test_color_jitter_only_on_foreground():
    pha, fgr = _rect_pair()
    p, f = A.ApplyOnlyAtIndices([1], A.ColorJitter(0.3, 0.3, 0.3, 0.1))([pha, fgr], _rng(1))
    assert np.array_equal(p, pha)
    assert not np.allclose(f, fgr)
    _assert_image(f, fgr.shape)


def test_affine_and_resize_identity_parameters_match_cover_crop():
    img = cv2.GaussianBlur(np.random.default_rng(0).random((60, 120, 3)).astype(np.float32), (0, 0), 3)
    t = A.RandomAffineAndResize((30, 30), degrees=(0, 0), translate=(0, 0), scale=(1, 1), shear=(0, 0))
    out = t(img, _rng())
    expected = cv2.resize(img, (60, 30), interpolation=cv2.INTER_AREA)[:, 15:45]
    assert out.shape == (30, 30, 3)
    assert np.abs(out - expected).mean() < 0.01


def test_transforms_single_image_and_to_chw():
    img = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    t = A.Compose([A.RandomAffineAndResize((16, 16), border='reflect'), A.ColorJitter(0.2, 0.2, 0.2, 0.05),
                   A.RandomBoxBlur(1, 2), A.RandomSharpen(1), A.ToCHW()])
    out = t(img, _rng(3))
    assert isinstance(out, np.ndarray)
    _assert_image(out, (3, 16, 16))
    assert np.array_equal(out, t(img, _rng(3)))  # same Generator seed, same result
    gray = A.ToCHW()(np.zeros((5, 7), np.float32))
    assert gray.shape == (1, 5, 7)


# --------------------------------------------------------------- per-step augmentations

def _batch(n=3, h=40, w=48, seed=0):
    rng = _rng(seed)
    pha = np.zeros((n, 1, h, w), np.float32)
    pha[:, :, 10:30, 12:36] = 1.0
    fgr = rng.random((n, 3, h, w)).astype(np.float32)
    bgr = (0.2 + 0.6 * rng.random((n, 3, h, w))).astype(np.float32)
    return pha, fgr, bgr


def test_random_crop_sizes():
    pha, fgr, bgr = _batch()
    for seed in range(5):
        out = A.random_crop([pha, fgr, bgr], _rng(seed), size_range=(16, 36), multiple=4)
        h, w = out[0].shape[2:]
        assert 16 <= h < 36 and 16 <= w < 36 and h % 4 == 0 and w % 4 == 0
        assert [o.shape[:2] for o in out] == [(3, 1), (3, 3), (3, 3)]
        for o in out:
            _assert_image(o, o.shape)


def test_shadow_only_darkens_and_respects_probability():
    pha, fgr, bgr = _batch()
    dark = A.add_shadow(bgr, pha, _rng(0), prob=1.0, translate=(0, 0), scale=(1, 1), degrees=(0, 0), shear=(0, 0))
    assert (dark <= bgr + 1e-6).all() and (dark < bgr - 1e-3).any()
    assert np.array_equal(A.add_shadow(bgr, pha, _rng(0), prob=0.0), bgr)


def test_noise_jitter_exposure_misalign_jpeg_ranges():
    pha, fgr, bgr = _batch()
    src = A.composite(fgr, pha, bgr)
    assert np.allclose(src[:, :, 15, 20], fgr[:, :, 15, 20]) and np.allclose(src[:, :, 0, 0], bgr[:, :, 0, 0])
    n_src, n_bgr = A.add_noise(src, bgr, _rng(1), prob=1.0)
    assert not np.array_equal(n_src, src) and not np.array_equal(n_bgr, bgr)
    assert np.array_equal(A.add_noise(src, bgr, _rng(1), prob=1.0)[1], n_bgr)  # a function of the Generator
    assert not np.array_equal(A.add_noise(src, bgr, _rng(2), prob=1.0)[1], n_bgr)
    outputs = [n_src, n_bgr, A.jitter_plate_color(bgr, _rng(2), prob=1.0), A.change_exposure(bgr, _rng(3), prob=1.0),
               A.misalign_plate(bgr, _rng(4), prob=1.0, translate=0.05), A.jpeg_artifacts(bgr, _rng(5), prob=1.0)]
    for out in outputs:
        _assert_image(out, bgr.shape)
        assert 0 < np.abs(out - bgr).mean() < 0.3
    snapshot = bgr.copy()
    A.misalign_plate(bgr, _rng(4), prob=1.0)
    assert np.array_equal(bgr, snapshot)  # inputs are never modified


def test_augment_batch_shapes_and_determinism():
    pha, fgr, bgr = _batch(n=4, h=64, w=64)
    out1 = A.augment_batch(pha, fgr, bgr, _rng(11), crop=(32, 48))
    out2 = A.augment_batch(pha, fgr, bgr, _rng(11), crop=(32, 48))
    src, plate, p, f = out1
    h, w = src.shape[2:]
    assert src.shape == (4, 3, h, w) and plate.shape == (4, 3, h, w) and p.shape == (4, 1, h, w) and f.shape == (4, 3, h, w)
    for x in out1:
        _assert_image(x, x.shape)
    assert all(np.array_equal(a, b) for a, b in zip(out1, out2))
    src0, plate0, _, _ = A.augment_batch(pha, fgr, bgr, _rng(0), crop=None, shadow_prob=0, noise_prob=0,
                                         jitter_prob=0, misalign_prob=0, exposure_prob=0, jpeg_prob=0)
    assert np.allclose(src0, A.composite(fgr, pha, bgr)) and np.array_equal(plate0, bgr)


def _smooth_batch():
    """A batch with a smooth background, as photos are: a plate shake then moves pixels by about the shift."""
    pha, fgr, bgr = _batch(n=4, h=64, w=64)
    return pha, fgr, np.stack([cv2.GaussianBlur(b.transpose(1, 2, 0), (0, 0), 4).transpose(2, 0, 1) for b in bgr])


def test_light_plate_change_keeps_the_plate_closer_than_official():
    pha, fgr, bgr = _smooth_batch()
    off = dict(crop=None, shadow_prob=0, noise_prob=0, exposure_prob=0, jpeg_prob=0, jitter_prob=1, misalign_prob=1)
    gap = {}
    for change in ('official', 'light'):
        diffs = [np.abs(A.augment_batch(pha, fgr, bgr, _rng(s), plate_change=change, **off)[1] - bgr).mean()
                 for s in range(8)]
        gap[change] = float(np.mean(diffs))
    assert 0 < gap['light'] < 0.5 * gap['official']
    with pytest.raises(ValueError, match='unknown plate change .*official, light'):
        A.augment_batch(pha, fgr, bgr, _rng(0), plate_change='tripod', **off)


def test_locked_plate_change_is_closest_in_tone_and_noise():
    # the plate-side steps a locked camera has as well: noise, exposure, jitter and shake, all drawn
    pha, fgr, bgr = _smooth_batch()
    on = dict(crop=None, shadow_prob=0, jpeg_prob=0, noise_prob=1, exposure_prob=1, jitter_prob=1, misalign_prob=1)
    gap = {}
    for change in ('light', 'locked'):
        out = [A.augment_batch(pha, fgr, bgr, _rng(s), plate_change=change, **on) for s in range(8)]
        # plate against the clean background, and the noise of the shot against the clean composite
        gap[change] = (float(np.mean([np.abs(o[1] - bgr).mean() for o in out])),
                       float(np.mean([np.abs(o[0] - A.composite(fgr, pha, bgr)).mean() for o in out])))
    assert 0 < gap['locked'][0] < 0.6 * gap['light'][0]
    assert 0 < gap['locked'][1] < 0.7 * gap['light'][1]


def test_batch_augment_shadow_prob_reaches_the_shadows():
    # a bright, flat background: a shadow is the only thing that darkens it in the shot
    pha, fgr, _ = _batch(n=4, h=64, w=64)
    bgr = np.full_like(fgr, 0.8)
    darkest = {}
    for prob in (0.0, 1.0):
        out = [BatchAugment(None, plate_change='locked', shadow_prob=prob)(pha, fgr, bgr, _rng(s)) for s in range(4)]
        background = np.concatenate([o[0][o[2].repeat(3, 1) == 0] for o in out])
        darkest[prob] = float(np.percentile(background, 1))  # sensor noise alone stays near 0.8
    assert darkest[0.0] > 0.7 > 0.65 > darkest[1.0]


# ------------------------------------------------------------------------- synthetic data

@pytest.mark.parametrize('size', [(64, 64), (48, 80)])
def test_synthetic_dataset_shapes_ranges_and_soft_alpha(size):
    h, w = size
    ds = SyntheticMattingDataset(6, size=size, seed=0)
    partial = 0
    for i in range(len(ds)):
        pha, fgr, bgr = ds[i]
        _assert_image(pha, (1, h, w))
        _assert_image(fgr, (3, h, w))
        _assert_image(bgr, (3, h, w))
        assert pha.max() > 0.99 and pha.min() < 0.01  # there is a subject and background
        partial += ((pha > 0.02) & (pha < 0.98)).sum()
    assert partial > 0  # soft edges, strands, semi-transparency


def test_synthetic_dataset_is_deterministic_per_seed_and_index():
    a, b = SyntheticMattingDataset(3, (40, 40), seed=5), SyntheticMattingDataset(3, (40, 40), seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a[2], b[2]))
    assert not np.array_equal(a[0][1], a[1][1])
    assert not np.array_equal(a[0][1], SyntheticMattingDataset(3, (40, 40), seed=6)[0][1])
    fresh = SyntheticMattingDataset(3, (40, 40), seed=5, new_samples_each_epoch=True)
    first = fresh[0][1]
    fresh.set_epoch(1)
    assert not np.array_equal(first, fresh[0][1])
    with pytest.raises(IndexError):
        a[3]
    batch = next(iter(paddle.io.DataLoader(a, batch_size=3, num_workers=0)))
    assert [tuple(x.shape) for x in batch] == [(3, 1, 40, 40), (3, 3, 40, 40), (3, 3, 40, 40)]


def test_make_sample_pair_has_realistic_plate_differences():
    src, bgr, pha, fgr = make_sample_pair(64, 80, seed=2)
    _assert_image(src, (64, 80, 3))
    _assert_image(bgr, (64, 80, 3))
    _assert_image(pha, (64, 80, 1))
    _assert_image(fgr, (64, 80, 3))
    background = pha[..., 0] == 0
    diff = np.abs(src - bgr)[background]
    assert 0 < diff.mean() < 0.15  # the plate differs (noise, shift, exposure) but only slightly
    assert all(np.array_equal(x, y) for x, y in zip(make_sample_pair(64, 80, seed=2), (src, bgr, pha, fgr)))


def test_write_synthetic_dataset_layouts(synthetic_root, tmp_path):
    for kind in ('pha', 'fgr', 'bgr'):
        assert len(ImagesDataset(os.path.join(synthetic_root, kind))) == 5
    assert ImagesDataset(os.path.join(synthetic_root, 'pha'), 'L')[0].shape == (48, 64, 1)
    root = write_synthetic_dataset(str(tmp_path / 'eval'), 2, size=(32, 32), seed=1, with_src=True)
    assert sorted(os.listdir(root)) == ['bgr', 'fgr', 'pha', 'src']
    assert ImagesDataset(os.path.join(root, 'src'))[1].shape == (32, 32, 3)
