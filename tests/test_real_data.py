"""Real-photo training data: the preparation command (with the registries replaced by local
packages) and the scenes made from its photographs."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from dataset import prepare as P
from dataset.real import KINDS, PhotoBank, RealPhotoMattingDataset, kind_weights, real_sample, write_real_validation_set

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _photo(rng, h, w):
    """A colourful textured picture (passes the flat-artwork filter)."""
    img = cv2.resize(rng.integers(0, 256, (h // 16, w // 16, 3), dtype=np.uint8), (w, h),
                     interpolation=cv2.INTER_CUBIC)
    return cv2.add(img, rng.integers(0, 30, (h, w, 3), dtype=np.uint8))


def _fake_fetch(pictures):
    """A stand-in for _fetch_debian/_fetch_pypi: unpacks `pictures` {relative path: image}."""
    def fetch(package, version, work):
        out = os.path.join(work, package)
        for rel, img in pictures.items():
            path = os.path.join(out, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            cv2.imwrite(path, img)
        os.makedirs(os.path.join(out, 'usr/share/doc', package), exist_ok=True)
        with open(os.path.join(out, 'usr/share/doc', package, 'copyright'), 'w') as f:
            f.write('licence text')
        return out, version or '1.0', 1234
    return fetch


@pytest.fixture(scope='module')
def photos_root(tmp_path_factory):
    """A prepared folder made from fake packages: 24 photos, two sizes of one wallpaper, a flat one."""
    rng = np.random.default_rng(0)
    pictures = {f'usr/share/backgrounds/photo{i:02d}.jpg': _photo(rng, 300, 420) for i in range(24)}
    pictures['usr/share/wallpapers/Twice/contents/images/640x400.png'] = _photo(rng, 400, 640)
    pictures['usr/share/wallpapers/Twice/contents/images/1280x800.png'] = _photo(rng, 800, 1280)
    pictures['usr/share/backgrounds/flat.png'] = np.full((300, 300, 3), 128, np.uint8)
    pictures['usr/share/backgrounds/tiny.png'] = _photo(rng, 64, 64)
    pictures['usr/share/wallpapers/Twice/contents/screenshot.png'] = _photo(rng, 300, 300)
    root = str(tmp_path_factory.mktemp('photos'))
    mp = pytest.MonkeyPatch()
    mp.setattr(P, 'DEBIAN', {'fake-wallpapers': ('1.0', ['usr/share/backgrounds', 'usr/share/wallpapers'])})
    mp.setattr(P, '_fetch_debian', _fake_fetch(pictures))
    manifest = P.prepare(root, sources=['debian'], progress=False)
    mp.undo()
    return root, manifest


def test_prepare_writes_photos_and_manifest(photos_root):
    root, manifest = photos_root
    names = sorted(os.path.basename(e['file']) for e in manifest['pictures'])
    # flat artwork, pictures under MIN_SIDE and screenshots are left out; of a wallpaper
    # shipped at two sizes only one (the larger) is kept
    assert len(names) == 25
    assert not any('flat' in n or 'tiny' in n or 'screenshot' in n for n in names)
    twice = [e for e in manifest['pictures'] if 'Twice' in e['file']]
    assert len(twice) == 1 and twice[0]['original'].endswith('1280x800.png')
    assert max(twice[0]['size']) == P.MAX_SIDE
    for e in manifest['pictures']:
        assert os.path.isfile(os.path.join(root, e['file']))
        assert e['file'].startswith(e['split'] + '/')
        assert e['split'] == P.split_of(os.path.splitext(os.path.basename(e['file']))[0])
        assert all(os.path.isfile(os.path.join(root, lic)) for lic in e['licences'])
    assert set(manifest['counts']) == set(P.SPLITS) and manifest['counts']['valid'] > 0
    assert P.load_manifest(root) == json.loads(json.dumps(manifest))
    # nothing of the unpacked packages is left behind
    assert sorted(os.listdir(root)) == ['licences', 'manifest.json', 'train', 'valid']


def test_prepare_rerun_skips_finished_work(photos_root, monkeypatch):
    root, manifest = photos_root

    def no_download(*args):
        raise AssertionError('a finished folder must not be downloaded again')
    monkeypatch.setattr(P, '_fetch_debian', no_download)
    assert P.prepare(root, sources=['debian'], progress=False)['pictures'] == manifest['pictures']


def test_split_is_stable_and_roughly_the_share():
    names = [f'pkg__picture{i}' for i in range(2000)]
    share = np.mean([P.split_of(n) == 'valid' for n in names])
    assert abs(share - P.VALID_SHARE) < 0.04
    assert [P.split_of(n) for n in names[:50]] == [P.split_of(n) for n in names[:50]]


def test_missing_manifest_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match='python -m dataset.prepare'):
        P.load_manifest(str(tmp_path))


def test_fetch_failure_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(P, 'DEBIAN', {'no-such-package-xyz': ('0', ['x'])})
    monkeypatch.setenv('PATH', str(tmp_path))  # no apt-get
    with pytest.raises(P.PrepareError, match='apt-get not found.*--sources pypi'):
        P.prepare(str(tmp_path / 'out'), sources=['debian'], progress=False)
    assert not os.path.exists(tmp_path / 'out' / P.MANIFEST)


def test_scenes_are_seeded_and_well_formed(photos_root):
    root, _ = photos_root
    ds = RealPhotoMattingDataset(12, (96, 128), root=root, split='train', seed=3)
    first = [ds[i] for i in range(12)]
    again = ds[5]
    for x, y in zip(first[5], again):
        np.testing.assert_array_equal(x, y)
    ds.set_epoch(1)
    assert not np.array_equal(ds[5][2], first[5][2])  # every epoch draws new scenes
    partial = 0
    for pha, fgr, bgr in first:
        assert pha.shape == (1, 96, 128) and fgr.shape == (3, 96, 128) and bgr.shape == (3, 96, 128)
        for x in (pha, fgr, bgr):
            assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
        partial += np.mean((pha > 0.05) & (pha < 0.95))
    assert partial > 0  # soft edges, strands and translucent parts give partial alpha


def test_every_kind_of_subject_is_drawn(photos_root, monkeypatch):
    import dataset.real as R
    root, _ = photos_root
    photos = PhotoBank(root, 'train')
    for kind in KINDS:
        monkeypatch.setattr(R, 'KINDS', {kind: 1.0})
        monkeypatch.setattr(R, 'EMPTY_PROB', 0.0)
        covered = [real_sample(64, 96, np.random.default_rng([i]), photos)[0].mean() for i in range(4)]
        assert max(covered) > 0.002, kind


def test_training_and_validation_use_disjoint_photos(photos_root):
    root, manifest = photos_root
    train, valid = PhotoBank(root, 'train'), PhotoBank(root, 'valid')
    assert not set(train.paths) & set(valid.paths)
    assert len(train) + len(valid) == len(manifest['pictures'])


def test_validation_set_and_eval_report_it(photos_root, tmp_path):
    root, _ = photos_root
    out = write_real_validation_set(str(tmp_path / 'val'), n=3, size=(64, 96), photos_root=root)
    for kind in ('pha', 'fgr'):
        assert sorted(os.listdir(os.path.join(out, kind))) == ['00000.png', '00001.png', '00002.png']
    pha = cv2.imread(os.path.join(out, 'pha', '00000.png'), cv2.IMREAD_UNCHANGED)
    assert pha.shape == (64, 96) and pha.max() >= 128  # no empty frames in the validation set
    # eval.py --dataset real composites them onto the validation photos and scores the difference key
    bench = subprocess.run([sys.executable, 'eval.py', '--dataset', 'real', '--gt-dir', out,
                            '--bgr-dir', os.path.join(root, 'valid'), '--prepare-only', '--no-progress',
                            '--cache-dir', str(tmp_path / 'cache')], cwd=ROOT, capture_output=True, text=True)
    assert bench.returncode == 0, bench.stderr
    folder = bench.stdout.strip().splitlines()[-1]
    assert sorted(os.listdir(os.path.join(folder, 'src'))) == ['00000.png', '00001.png', '00002.png']


def test_eval_real_without_prepared_set_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, 'eval.py', '--dataset', 'real', '--gt-dir', str(tmp_path / 'none'),
                           '--prepare-only'], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert 'python -m dataset.prepare' in done.stderr.strip().splitlines()[-1]


def test_build_datasets_real(photos_root, tmp_path):
    from dataset.batches import REAL_PHOTOS, build_datasets
    root, _ = photos_root
    os.symlink(root, tmp_path / REAL_PHOTOS)  # the photos under a data root, as train.py finds them
    train, valid = build_datasets('real', (64, 64), 4, seed=0, synthetic_length=10, data_root=str(tmp_path))
    assert len(train) == 10 and len(valid) == 4
    assert not set(train.photos.paths) & set(valid.photos.paths)
    assert train[0][0].shape == (1, 64, 64)


def test_kind_weights_replace_some_defaults_and_reject_bad_text():
    assert kind_weights('') == KINDS
    mix = kind_weights(' translucent=0.3, person=0 ')
    assert list(mix) == list(KINDS) and mix['translucent'] == 0.3 and mix['person'] == 0
    assert {k: v for k, v in mix.items() if k not in ('translucent', 'person')} == \
        {k: v for k, v in KINDS.items() if k not in ('translucent', 'person')}
    for text, message in [('glass=1', 'KIND one of'), ('translucent', 'KIND=WEIGHT'),
                          ('translucent=-1', 'non-negative'), ('translucent=lots', 'non-negative'),
                          ('translucent=nan', 'non-negative'),
                          (','.join(f'{k}=0' for k in KINDS), 'at least one kind')]:
        with pytest.raises(ValueError, match=message) as e:
            kind_weights(text)
        assert '\n' not in str(e.value)


def _opaque_share(dataset, n=8):
    """Share of the subject's pixels (alpha > 0.01) that are opaque (alpha > 0.99)."""
    pha = np.stack([dataset[i][0] for i in range(n)])
    return float(np.mean(pha[pha > 0.01] > 0.99))


def test_real_kinds_change_the_training_mix_and_not_the_validation_scenes(photos_root, tmp_path):
    from dataset.batches import REAL_PHOTOS, build_datasets
    root, _ = photos_root
    os.symlink(root, tmp_path / REAL_PHOTOS)
    only = lambda kind: ','.join(f'{k}={int(k == kind)}' for k in KINDS)
    sets = {kind: build_datasets('real', (64, 96), 3, seed=1, synthetic_length=8, data_root=str(tmp_path),
                                 real_kinds=only(kind)) for kind in ('translucent', 'blob')}
    default_train, default_valid = build_datasets('real', (64, 96), 3, seed=1, synthetic_length=8,
                                                   data_root=str(tmp_path))
    translucent, blob = sets['translucent'][0], sets['blob'][0]
    assert 'translucent=1' in translucent.describe() and 'kinds' not in default_train.describe()
    # translucent layers are partial alpha over their whole area, blobs are opaque inside
    assert _opaque_share(translucent) < 0.3 < 0.6 < _opaque_share(blob)
    for _, valid in sets.values():
        for x, y in zip(valid[1], default_valid[1]):
            np.testing.assert_array_equal(x, y)
