"""Procedural matting data: foreground, alpha and background generated from a seed.

Lets training, evaluation and the demos run on a fresh machine with no download. Each
sample is a made-up scene, built to show the model what real photos contain:

* foregrounds: one person (sometimes two, sometimes cut by the frame edge) with head,
  neck, neckline, shoulders/torso, often arms and hands and a simple face; or a cluster
  of objects, or a potted plant with leaves and gaps; silhouettes are unions of shapes
  smoothed into organic contours with anti-aliased edges of random softness (sharp focus
  to slight defocus), sometimes motion blur;
* hair: straight, wavy or curly; a hair mass with a wispy noisy edge, optional long hair,
  and locks of thin curved strands of partial alpha; fuzzy fibre fringes on some clothes;
* semi-transparent regions: veils and scarves (some with lace holes), glasses, drinking
  glasses with opaque rims and a specular streak;
* textures: fabric patterns (stripes, checks, dots, prints, knit) with folds, skin tones
  with blotches and pores, hair with visible strands and sheen, fake 3-D shading from the
  silhouette, occasional rim light and light wrap (background light spilling over edges);
* backgrounds: rooms (walls, floor and ceiling in perspective with wood/tile/carpet,
  windows, pictures, shelves, doors, furniture, clutter with contact shadows, soft corner
  shadows, uneven lighting), outdoor scenes (sky, clouds, buildings, trees, ground) and
  studio backdrops with bokeh; random depth of field;
* one camera: scene light colour and lens vignetting shared by subject and background,
  so composites look like one photo.

The dataset returns clean (pha, fgr, bgr); what separates a real plate from the real
background (cast shadows, sensor noise, misalignment, exposure change) is added per step
by ``augmentation.augment_batch``, or here by ``make_sample_pair`` for still samples.

Everything is a pure function of the seed: sample i of ``SyntheticMattingDataset(seed=s)``
is generated from ``numpy.random.default_rng([s, i])`` (a SeedSequence of the pair, rather
than s + i, so that datasets with seeds 0 and 1 do not share shifted copies of samples).
All arrays are float32 in [0, 1]. Generation costs about 40-60 ms of one CPU core per
512x512 sample (about 20 ms at 256x256), measured on a 2-core machine shared with other jobs;
with DataLoader workers it runs alongside training.

Modules: drawing (noise, colours, soft alpha, shapes), textures, backgrounds, foregrounds
(people, objects, plants as alpha layers), scene (`synthesize`: one whole scene); this
package holds the dataset and the writers.
"""
import os

import numpy as np

from utils.image_io import write_image
from .. import augmentation as A
from ..datasets import SeededDataset
from .drawing import fractal_noise
from .scene import synthesize

__all__ = ['SyntheticMattingDataset', 'synthesize', 'make_sample_pair', 'write_synthetic_dataset',
           'fractal_noise']


class SyntheticMattingDataset(SeededDataset):
    """`length` procedurally generated samples: (pha (1,H,W), fgr (3,H,W), bgr (3,H,W)) float32 in [0, 1].

    size is (H, W). Sample i is a pure function of (seed, i) -- or of (seed, epoch, i) with
    new_samples_each_epoch=True, after set_epoch(epoch), which turns the dataset into an
    endless supply of fresh scenes. Compose src = fgr * pha + bgr * (1 - pha) yourself, or
    use augmentation.augment_batch, which adds shadows, noise and plate differences.
    """

    def __init__(self, length, size=(512, 512), seed=0, new_samples_each_epoch=False):
        super().__init__(seed)
        self.length = int(length)
        self.size = (int(size[0]), int(size[1]))
        self.new_samples_each_epoch = new_samples_each_epoch

    def __len__(self):
        return self.length

    def rng_for(self, idx):
        """Scenes stay the same every epoch unless new_samples_each_epoch."""
        if self.new_samples_each_epoch:
            return super().rng_for(idx)
        return np.random.default_rng([self.seed, int(idx)])

    def sample_hwc(self, idx):
        """Sample `idx` as HWC arrays: pha (H,W,1), fgr (H,W,3), bgr (H,W,3)."""
        if not 0 <= idx < self.length:
            raise IndexError(f'SyntheticMattingDataset: index {idx} out of range for length {self.length}')
        return synthesize(self.size[0], self.size[1], self.rng_for(idx))

    def get(self, idx, rng):
        pha, fgr, bgr = synthesize(self.size[0], self.size[1], rng)
        return tuple(np.ascontiguousarray(x.transpose(2, 0, 1)) for x in (pha, fgr, bgr))

    def describe(self):
        return f'synthetic data ({self.length} samples of {self.size[0]}x{self.size[1]}, seed {self.seed})'


def make_sample_pair(h, w, seed=0):
    """A realistic test pair: (src, bgr, pha, fgr), HWC float32 in [0, 1].

    src is the synthetic subject composited over its background with a cast shadow and
    sensor noise; bgr is the background plate as a second capture would give it: its own
    noise, a slight misalignment (<= 0.5 degree, <= 0.5 % shift) and a small exposure and
    white-balance change. pha (H,W,1) and fgr (H,W,3) are the ground truth.
    """
    rng = np.random.default_rng([int(seed), 0xB6])
    pha, fgr, bgr = synthesize(h, w, rng)
    P, F, B = (x.transpose(2, 0, 1)[None] for x in (pha, fgr, bgr))
    src_bg = A.add_shadow(B, P, rng, prob=1.0, strength=(0.15, 0.4))
    src = A.composite(F, P, src_bg)
    plate = A.misalign_plate(B, rng, prob=1.0, degrees=0.5, translate=0.005)
    plate = A.change_exposure(plate, rng, prob=1.0, max_ev=0.1, max_white_balance=0.02)
    src, plate = A.add_noise(src, plate, rng, prob=1.0, max_sigma=0.015, max_shot=0.001)
    return (src[0].transpose(1, 2, 0), plate[0].transpose(1, 2, 0), pha, fgr)


def write_synthetic_dataset(root, n, size=(512, 512), seed=0, with_src=False):
    """Write `n` synthetic samples as PNGs under root/{pha,fgr,bgr}/00000.png ...; returns root.

    with_src=False: clean pha/fgr/bgr, the layout of a training set (compose yourself).
    with_src=True: the layout of an evaluation/prediction set: src/ holds composites and
    bgr/ holds the captured plates of make_sample_pair (noise, misalignment, exposure
    change), with the ground truth in pha/ and fgr/. Files are written atomically, so an
    interrupted run leaves no half-written image.
    """
    h, w = size
    dataset = SyntheticMattingDataset(n, size, seed)
    for i in range(n):
        name = f'{i:05d}.png'
        if with_src:
            src, bgr, pha, fgr = make_sample_pair(h, w, seed=_pair_seed(seed, i))
            write_image(os.path.join(root, 'src', name), src)
        else:
            pha, fgr, bgr = dataset.sample_hwc(i)
        write_image(os.path.join(root, 'pha', name), pha[:, :, 0])
        write_image(os.path.join(root, 'fgr', name), fgr)
        write_image(os.path.join(root, 'bgr', name), bgr)
    return root


def _pair_seed(seed, i):
    """Seed of the i-th pair of a written evaluation set (distinct from other seeds' pairs)."""
    return int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0])
