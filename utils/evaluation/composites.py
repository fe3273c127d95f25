"""Composites (`prepare_composites`). The paper composites each test foreground onto a
background and gives the network a *flawed* background plate, to imitate a real capture:
slight misalignment, a colour change and sensor noise. Exactly what is done here, per
sample, with a random stream seeded by (seed, CRC-32 of the sample name):

1. a background is picked uniformly from the sorted background folder, scaled (aspect
   kept) to cover the foreground and centre-cropped to its size;
2. src = fgr * alpha + background * (1 - alpha), from the clean background;
3. the plate given to the model is the same background shifted by (dx, dy) ~ U(-0.3, 0.3)
   px each (bilinear, reflected border), raised to a gamma ~ U(0.85, 1.15) and given
   Gaussian noise of standard deviation `noise_std` (0.01 by default), then clipped;
4. src, plate, ground-truth alpha / foreground and the trimap are written as 8-bit PNGs to
   ``<cache_dir>/<dataset>-seed<seed>-<key>/{src,bgr,pha,fgr,trimap}/<name>.png``, where
   key hashes every parameter and the input file names and sizes. A finished folder has a
   manifest.json (written last, with each sample's background / shift / gamma) and is
   reused as is by later runs; the model always reads the PNGs back from it, so the first
   run and every later run see the same bytes. The cache folder is itself in pha/fgr
   layout (plus src/ and bgr/), so other implementations can run on it and be scored with
   ``eval.py --pred-dir``.

NumPy's legacy RandomState is used because its streams are frozen across NumPy versions
(Generator's distributions are not); the manifest records the numpy and OpenCV versions,
since resizing/warping could differ across OpenCV releases.
"""
import hashlib
import json
import math
import os
import zlib
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
from tqdm import tqdm

from utils.evaluation.report import write_json
from utils.evaluation.samples import EvaluationError, images_by_stem
from utils.evaluation import trimap as trimap_rules
from utils.image_io import cover_crop, read_image, to_uint8, write_image

PROTOCOL_VERSION = 1  # bump when the composite recipe changes, so old caches are not reused


@dataclass
class CompositeConfig:
    """Parameters of the composite protocol (see the module docstring)."""
    seed: int = 0
    max_shift: float = 0.3  # pixels, each axis
    gamma_range: tuple = (0.85, 1.15)
    noise_std: float = 0.01
    trimap: dict = field(default_factory=lambda: {'low': trimap_rules.LOW, 'high': trimap_rules.HIGH,
                                                  'iterations': trimap_rules.ITERATIONS,
                                                  'kernel_size': trimap_rules.KERNEL_SIZE})

    def validate(self):
        if not 0 <= self.max_shift <= 5:
            raise EvaluationError(f'shift must be in [0, 5] pixels, got {self.max_shift}')
        lo, hi = self.gamma_range
        if not 0 < lo <= hi:
            raise EvaluationError(f'gamma range must satisfy 0 < min <= max, got {self.gamma_range}')
        if self.noise_std < 0:
            raise EvaluationError(f'noise std must be >= 0, got {self.noise_std}')
        if not 0 <= self.seed < 2 ** 32:
            raise EvaluationError(f'seed must be in [0, 2^32), got {self.seed}')


def sample_rng(seed, name):
    """The random stream of one sample: depends only on the seed and the sample's name,
    so adding or removing other images does not change it."""
    return np.random.RandomState([seed, zlib.crc32(name.encode('utf-8'))])


def fit_background(bgr, height, width):
    """Scale `bgr` (aspect kept) to cover height x width and centre-crop to exactly that size."""
    return cover_crop(bgr, width, height, _resize_for_composites, rounding=lambda x: math.ceil(x - 1e-9))


def _resize_for_composites(img, size):
    # INTER_AREA averages when shrinking (no aliasing); bilinear when enlarging.
    shrink = size[0] * size[1] < img.shape[0] * img.shape[1]
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def perturb_background(bgr, dx, dy, gamma, noise):
    """The flawed background plate: sub-pixel shift, gamma, additive noise, clipped to [0, 1]."""
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    shifted = cv2.warpAffine(bgr, matrix, (bgr.shape[1], bgr.shape[0]), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT_101)
    shifted = np.clip(shifted, 0.0, 1.0) ** gamma
    return np.clip(shifted + noise, 0.0, 1.0).astype(np.float32)


def _file_signature(paths):
    return [[os.path.basename(p), os.path.getsize(p)] for p in paths]


def composites_key(dataset, samples, bgr_paths, config):
    """Hash of everything the composites depend on (parameters, input names and sizes)."""
    blob = json.dumps({
        'version': PROTOCOL_VERSION, 'dataset': dataset, 'config': asdict(config),
        'samples': [[s.name] + _file_signature([p for p in (s.pha_path, s.fgr_path) if p])
                    for s in samples],
        'backgrounds': _file_signature(bgr_paths),
    }, sort_keys=True)
    return hashlib.sha256(blob.encode('utf-8')).hexdigest()[:12]


def prepare_composites(samples, bgr_dir, cache_dir, config, dataset='photomatte85', progress=True):
    """Make (or reuse) the fixed composites of `samples`; return the benchmark folder path.

    See the module docstring for the recipe and the folder layout.
    """
    config.validate()
    bgr_paths = list(images_by_stem(bgr_dir, 'background').values())
    key = composites_key(dataset, samples, bgr_paths, config)
    bench_dir = os.path.join(cache_dir, f'{dataset}-seed{config.seed}-{key}')
    manifest_path = os.path.join(bench_dir, 'manifest.json')
    if os.path.isfile(manifest_path):
        with open(manifest_path, encoding='utf-8') as f:
            manifest = json.load(f)
        if manifest.get('key') == key and all(
                os.path.isfile(os.path.join(bench_dir, sub, s.name + '.png'))
                for s in samples for sub in ('src', 'bgr', 'pha', 'fgr', 'trimap')):
            return bench_dir

    records = {}
    for sample in tqdm(samples, desc='composites', unit='img', disable=not progress):
        pha, fgr = sample.load()
        if fgr is None:
            raise EvaluationError(f'{sample.name}: no foreground image; compositing needs one')
        pha = to_uint8(pha).astype(np.float32) / 255.0  # the protocol's ground truth is 8-bit
        fgr = to_uint8(fgr).astype(np.float32) / 255.0
        height, width = pha.shape
        if height < 4 or width < 4:
            raise EvaluationError(f'{sample.pha_path}: {width}x{height} is too small (at least 4x4)')
        rng = sample_rng(config.seed, sample.name)
        bgr_index = int(rng.randint(len(bgr_paths)))
        dx, dy = (float(v) for v in rng.uniform(-config.max_shift, config.max_shift, size=2))
        gamma = float(rng.uniform(*config.gamma_range))
        noise = rng.normal(0.0, config.noise_std, size=(height, width, 3)) if config.noise_std else 0.0
        bgr = fit_background(read_image(bgr_paths[bgr_index], 'rgb'), height, width)
        src = fgr * pha[:, :, None] + bgr * (1.0 - pha[:, :, None])
        plate = perturb_background(bgr, dx, dy, gamma, noise)
        for sub, img in (('src', src), ('bgr', plate), ('pha', pha), ('fgr', fgr),
                         ('trimap', trimap_rules.make_trimap(pha, **config.trimap))):
            write_image(os.path.join(bench_dir, sub, sample.name + '.png'), img)
        records[sample.name] = {'source': os.path.basename(sample.pha_path),
                                'background': os.path.basename(bgr_paths[bgr_index]),
                                'shift_x': dx, 'shift_y': dy, 'gamma': gamma}
    write_json(manifest_path, {
        'key': key, 'protocol_version': PROTOCOL_VERSION, 'dataset': dataset,
        'config': asdict(config), 'numpy': np.__version__, 'opencv': cv2.__version__,
        'samples': records,
    })
    return bench_dir


def read_manifest(bench_dir):
    """The per-sample composite parameters recorded by `prepare_composites`."""
    with open(os.path.join(bench_dir, 'manifest.json'), encoding='utf-8') as f:
        return json.load(f)
