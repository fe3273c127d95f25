"""Matting samples made of real photographs: the rule "where the frame differs from the plate,
there is foreground" taught on real pixels.

Backgrounds are crops of real photographs (``python -m dataset.prepare``). Foregrounds are
layers of other real photographs cut out by alpha mattes of many kinds, because a real
subject can be anything in front of the plate, not only a person:

* blobs: organic outlines, sometimes cut by the frame, with holes (objects with gaps,
  eye-like dark holes), hard or soft edges;
* plants: branching stems of 1-3 px with leaves;
* strings and wires thinner than a pixel (partial alpha), drawn supersampled;
* fur and hair: a body with many thin strands growing out of its outline;
* translucent material: alpha well below 1 over a whole region;
* procedural people (``dataset.synthetic``) placed over the real background.

The foreground textures are real photo crops, with colour changes; some are made close to the
background's colours in places (camouflage, the hard case for any difference key), and some
get dark patches inside the subject (eyes, nostrils, shadows), which a key-like network tends
to punch out. Motion blur and defocus act on alpha and premultiplied colour together.

Sample i of epoch e is a pure function of (seed, e, i) (``SeededDataset``), so training resumes
exactly and every epoch draws new scenes. Items are (pha (1,H,W), fgr (3,H,W), bgr (3,H,W))
float32 in [0, 1], like ``SyntheticMattingDataset``; shadows, noise and plate changes are added
per batch by ``augmentation.augment_batch``.
"""
import math
import os

import cv2
import numpy as np

from utils.image_io import write_image
from .datasets import SeededDataset
from .prepare import DEFAULT_ROOT, load_manifest
from .synthetic.drawing import draw_strands, fractal_noise
from .synthetic.scene import blur_premultiplied, motion_blur, synthesize

__all__ = ['PhotoBank', 'RealPhotoMattingDataset', 'real_sample', 'write_real_validation_set', 'KINDS',
           'kind_weights']

# Foreground kinds and how often each is drawn for one layer (relative weights). The validation
# set always uses these; training may change them (kind_weights, train.py --real-kinds).
KINDS = {'blob': 0.28, 'person': 0.22, 'fur': 0.16, 'plant': 0.12, 'translucent': 0.10, 'strings': 0.12}
EMPTY_PROB = 0.03  # frames with no subject at all: src equals the plate, alpha must be 0
SUPERSAMPLE = 4    # thin structures are drawn this many times larger, then area-averaged


def kind_weights(text):
    """KINDS with some weights replaced: 'translucent=0.3,person=0.1' -> dict (same order).

    '' gives KINDS unchanged. Raises ValueError (one line) on an unknown kind, a weight that is
    not a non-negative number, or all weights zero.
    """
    weights = dict(KINDS)
    for item in filter(None, (part.strip() for part in text.split(','))):
        name, sep, value = item.partition('=')
        name = name.strip()
        if not sep or name not in KINDS:
            raise ValueError(f'bad kind weight {item!r}: write KIND=WEIGHT with KIND one of {", ".join(KINDS)}')
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not weight >= 0 or math.isinf(weight):
            raise ValueError(f'bad kind weight {item!r}: the weight must be a non-negative number')
        weights[name] = weight
    if not sum(weights.values()) > 0:
        raise ValueError(f'bad kind weights {text!r}: at least one kind needs a weight above 0')
    return weights


class PhotoBank:
    """The prepared photographs of one split, decoded on first use (uint8 RGB, kept in memory).

    crop(rng, h, w) -> (h, w, 3) float32 in [0, 1]: a random window of a random photo, at a
    random zoom, flipped half of the time.
    """

    def __init__(self, root=DEFAULT_ROOT, split='train'):
        manifest = load_manifest(root)
        self.paths = [os.path.join(root, e['file']) for e in manifest['pictures'] if e['split'] == split]
        if not self.paths:
            raise ValueError(f'{root} holds no {split} photos; re-run `python -m dataset.prepare --root {root}`')
        self._cache = {}

    def __len__(self):
        return len(self.paths)

    def image(self, i):
        if i not in self._cache:
            img = cv2.imread(self.paths[i], cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError(f'cannot read {self.paths[i]}; re-run `python -m dataset.prepare`')
            self._cache[i] = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        return self._cache[i]

    def crop(self, rng, h, w, index=None, zoom=(1.0, 3.0)):
        img = self.image(int(rng.integers(len(self))) if index is None else index)
        ih, iw = img.shape[:2]
        # window in photo pixels: covers (h, w) in aspect, 1/zoom of the largest such window
        fit = min(ih / h, iw / w)
        s = fit / rng.uniform(*zoom)
        wh, ww = max(2, int(h * s)), max(2, int(w * s))
        y, x = int(rng.integers(0, ih - wh + 1)), int(rng.integers(0, iw - ww + 1))
        out = cv2.resize(img[y:y + wh, x:x + ww], (w, h), interpolation=cv2.INTER_AREA if s > 1 else cv2.INTER_LINEAR)
        if rng.random() < 0.5:
            out = out[:, ::-1]
        return np.ascontiguousarray(out, dtype=np.float32) * np.float32(1 / 255)


# --------------------------------------------------------------------------------------
# Alpha mattes
# --------------------------------------------------------------------------------------

def _outline(rng, cx, cy, radius, n=96, roughness=0.35):
    """Closed organic outline: a circle whose radius varies by a few random harmonics."""
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 8):
        r += rng.normal(0, roughness / k) * np.cos(k * t + rng.uniform(0, 2 * math.pi))
    r = np.clip(r, 0.25, 2.0) * radius
    aspect = rng.uniform(0.5, 1.5)
    angle = rng.uniform(0, math.pi)
    x, y = r * np.cos(t) * aspect, r * np.sin(t) / aspect
    c, s = math.cos(angle), math.sin(angle)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def _fill(mask, points, value=1.0):
    """Anti-aliased polygon fill on a float32 canvas (sub-pixel vertex precision)."""
    cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], value, cv2.LINE_AA, shift=4)


def _soften(alpha, rng, max_sigma=2.0):
    """Random edge softness, from sharp to slightly defocused."""
    if rng.random() < 0.5:
        return alpha
    return cv2.GaussianBlur(alpha, (0, 0), rng.uniform(0.4, max_sigma))


def _blob(rng, h, w):
    m = np.zeros((h, w), np.float32)
    side = min(h, w)
    for _ in range(int(rng.integers(1, 4))):
        # often anchored at the bottom or a side edge, as subjects cut by the frame are
        cx, cy = rng.uniform(0, w), rng.uniform(0.2 * h, 1.1 * h)
        _fill(m, _outline(rng, cx, cy, side * rng.uniform(0.12, 0.4)))
    if rng.random() < 0.45:  # holes: handles, gaps between arms, a ring
        ys, xs = np.nonzero(m > 0.99)
        for _ in range(int(rng.integers(1, 4))):
            if len(ys) == 0:
                break
            j = int(rng.integers(len(ys)))
            _fill(m, _outline(rng, xs[j], ys[j], side * rng.uniform(0.02, 0.1), roughness=0.2), 0.0)
    return _soften(np.clip(m, 0, 1), rng)


def _big(h, w):
    return np.zeros((h * SUPERSAMPLE, w * SUPERSAMPLE), np.float32)


def _small(canvas, h, w):
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)


def _polyline(canvas, points, thickness):
    pts = np.round(np.asarray(points) * SUPERSAMPLE * 16).astype(np.int32)
    cv2.polylines(canvas, [pts], False, 1.0, max(1, int(round(thickness * SUPERSAMPLE))), cv2.LINE_AA, shift=4)


def _curve(rng, start, direction, length, segments=16, curl=0.15):
    theta = direction + np.cumsum(rng.normal(0, curl, segments))
    step = length / segments
    pts = np.cumsum(np.stack([np.cos(theta), np.sin(theta)], 1) * step, 0) + start
    return np.vstack([start, pts])


def _strings(rng, h, w):
    """Wires, strings and thin twigs, 0.4-3 px wide (partial alpha below one pixel)."""
    c = _big(h, w)
    for _ in range(int(rng.integers(1, 7))):
        start = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        pts = _curve(rng, start, rng.uniform(0, 2 * math.pi), rng.uniform(0.4, 1.5) * max(h, w), curl=0.08)
        _polyline(c, pts, rng.uniform(0.4, 3.0))
    return np.clip(_small(c, h, w), 0, 1)


def _plant(rng, h, w):
    """A plant: stems rising from the bottom, branching, with leaves."""
    c = _big(h, w)
    side = min(h, w)
    stems = [_curve(rng, np.array([rng.uniform(0.2, 0.8) * w, h * rng.uniform(0.9, 1.05)]),
                    -math.pi / 2 + rng.normal(0, 0.4), side * rng.uniform(0.4, 0.9), curl=0.1)
             for _ in range(int(rng.integers(1, 4)))]
    for stem in stems:
        _polyline(c, stem, rng.uniform(1.0, 4.0))
        for p in stem[2::2]:
            if rng.random() < 0.3:  # branch
                br = _curve(rng, p, rng.uniform(0, 2 * math.pi), side * rng.uniform(0.1, 0.3), 8)
                _polyline(c, br, rng.uniform(0.6, 2.0))
                p = br[-1]
            length = side * rng.uniform(0.03, 0.12)
            angle = rng.uniform(0, 360)
            centre = p + length * np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
            axes = (length * SUPERSAMPLE, length * rng.uniform(0.2, 0.5) * SUPERSAMPLE)
            cv2.ellipse(c, (int(centre[0] * SUPERSAMPLE), int(centre[1] * SUPERSAMPLE)),
                        (max(1, int(axes[0])), max(1, int(axes[1]))), angle, 0, 360, 1.0, -1, cv2.LINE_AA)
    return np.clip(_small(c, h, w), 0, 1)


def _fur(rng, h, w):
    """A body (blob) with hair or fur: many strands growing out of its outline."""
    body = _blob(rng, h, w)
    canvas = np.zeros((h, w), np.uint8)
    solid = (body > 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(solid, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return body
    pts = np.concatenate([c[:, 0, :] for c in contours]).astype(np.float64)
    n = min(len(pts), int(rng.integers(150, 1200)))
    pick = pts[rng.choice(len(pts), n, replace=False)]
    centre = pts.mean(axis=0)
    directions = np.arctan2(pick[:, 1] - centre[1], pick[:, 0] - centre[0]) + rng.normal(0, 0.4, n)
    side = min(h, w)
    # start a little inside the outline so that strands grow from the body, not beside it
    starts = pick - 2.0 * np.stack([np.cos(directions), np.sin(directions)], 1)
    length = (side * 0.02, side * rng.uniform(0.05, 0.2))
    draw_strands(rng, canvas, starts, directions, length, curl=rng.uniform(0.05, 0.3),
             gravity=rng.uniform(0, 0.2), intensity=(0.25, 1.0))
    return np.maximum(body, canvas.astype(np.float32) / 255)


def _translucent(rng, h, w):
    """Glass, tulle, smoke: a region of partial alpha, uniform or varying."""
    m = _blob(rng, h, w)
    level = rng.uniform(0.15, 0.85)
    if rng.random() < 0.5:
        level = np.clip(level + 0.15 * fractal_noise(rng, h, w), 0.05, 1.0)
    return (m * level).astype(np.float32)


SHAPES = {'blob': _blob, 'fur': _fur, 'plant': _plant, 'translucent': _translucent, 'strings': _strings}


# --------------------------------------------------------------------------------------
# Textures and the sample
# --------------------------------------------------------------------------------------

def _recolour(rng, tex):
    """A random colour change: per-channel gain, saturation and brightness."""
    gain = rng.uniform(0.7, 1.3, 3).astype(np.float32)
    grey = tex.mean(axis=2, keepdims=True)
    sat = np.float32(rng.uniform(0.5, 1.4))
    out = (grey + (tex - grey) * sat) * gain * np.float32(rng.uniform(0.6, 1.3))
    return np.clip(out, 0, 1)


def _texture(rng, photos, bgr):
    h, w = bgr.shape[:2]
    tex = _recolour(rng, photos.crop(rng, h, w))
    r = rng.random()
    if r < 0.25:
        # camouflage: in some places the subject has (almost) the background's colours
        shift = rng.uniform(-0.12, 0.12, 3).astype(np.float32)
        near = np.clip(bgr + shift, 0, 1)
        field = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), min(h, w) * 0.08)
        field = (field - field.min()) / max(1e-6, float(np.ptp(field)))
        weight = np.clip((field - rng.uniform(0.3, 0.7)) * 6, 0, 1)[..., None]
        tex = tex * (1 - weight) + near * weight
    elif r < 0.5:
        # dark parts inside the subject (eyes, nostrils, folds)
        dark = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(1, 6))):
            _fill(dark, _outline(rng, rng.uniform(0, w), rng.uniform(0, h), min(h, w) * rng.uniform(0.01, 0.06)))
        dark = cv2.GaussianBlur(dark, (0, 0), 1.0)[..., None]
        tex = tex * (1 - dark * rng.uniform(0.7, 0.97))
    return tex.astype(np.float32)


def real_sample(h, w, rng, photos, kinds=None):
    """One sample (pha (h, w, 1), fgr (h, w, 3), bgr (h, w, 3)) float32 in [0, 1].

    kinds: {kind: relative weight} of the foreground layers (default KINDS).
    """
    weights = KINDS if kinds is None else kinds
    bgr = photos.crop(rng, h, w)
    pha = np.zeros((h, w), np.float32)
    pre = np.zeros((h, w, 3), np.float32)  # premultiplied colour of the layers so far
    kinds = list(weights)
    probs = np.array([weights[k] for k in kinds], np.float64)
    layers = 0 if rng.random() < EMPTY_PROB else int(rng.choice([1, 1, 1, 2, 2, 3]))
    top = None
    for _ in range(layers):
        kind = kinds[int(rng.choice(len(kinds), p=probs / probs.sum()))]
        if kind == 'person':
            a, colour, _ = synthesize(h, w, rng)
            a = a[..., 0]
        else:
            a = SHAPES[kind](rng, h, w)
            colour = _texture(rng, photos, bgr)
        pre = pre * (1 - a[..., None]) + colour * a[..., None]
        pha = pha * (1 - a) + a
        top = colour
    fgr = top if top is not None else photos.crop(rng, h, w)
    inside = pha > 1e-4
    fgr = fgr.copy()
    fgr[inside] = pre[inside] / pha[inside][:, None]
    fgr = np.clip(fgr, 0, 1)
    r = rng.random()
    if layers and r < 0.08:
        pha, fgr = motion_blur(pha, fgr, rng, min(h, w) // 25)
    elif layers and r < 0.14:  # defocus
        s = rng.uniform(0.6, 2.0)
        pha, fgr = blur_premultiplied(pha, fgr, lambda x: cv2.GaussianBlur(x, (0, 0), s))
    return pha[..., None].astype(np.float32), fgr.astype(np.float32), bgr.astype(np.float32)


class RealPhotoMattingDataset(SeededDataset):
    """`length` samples per epoch of real-photo scenes: (pha (1,H,W), fgr (3,H,W), bgr (3,H,W)).

    Args:
        length: samples per epoch (each epoch draws new scenes; see ``SeededDataset``).
        size: (H, W) of the samples.
        root: folder written by ``python -m dataset.prepare``.
        split: 'train' or 'valid' photographs (disjoint).
        seed: seed of the scenes.
        kinds: {kind: relative weight} of the foreground layers (default KINDS; see kind_weights).
    """

    def __init__(self, length, size=(256, 256), root=DEFAULT_ROOT, split='train', seed=0, kinds=None):
        super().__init__(seed)
        self.length = int(length)
        self.size = (int(size[0]), int(size[1]))
        self.photos = PhotoBank(root, split)
        self.split = split
        self.kinds = kinds

    def __len__(self):
        return self.length

    def get(self, idx, rng):
        pha, fgr, bgr = real_sample(self.size[0], self.size[1], rng, self.photos, self.kinds)
        return tuple(np.ascontiguousarray(x.transpose(2, 0, 1)) for x in (pha, fgr, bgr))

    def describe(self):
        mix = '' if self.kinds is None else ', kinds ' + ' '.join(f'{k}={v:g}' for k, v in self.kinds.items())
        return (f'real-photo scenes ({self.length} samples of {self.size[0]}x{self.size[1]}, '
                f'{self.split} photos, seed {self.seed}{mix})')


def write_real_validation_set(root, n=40, size=(720, 1280), seed=7, photos_root=DEFAULT_ROOT, progress=False):
    """Write n ground-truth foregrounds from the validation photos as root/pha, root/fgr PNGs.

    eval.py composites them onto the validation photos themselves (``--bgr-dir
    <photos_root>/valid``), with its protocol's plate changes, so no training photo appears
    in them. Files are written atomically. Returns root.
    """
    from tqdm import tqdm
    photos = PhotoBank(photos_root, 'valid')
    for i in tqdm(range(n), desc='validation set', disable=not progress):
        rng = np.random.default_rng([seed, i])
        pha = np.zeros(size + (1,), np.float32)
        while pha.max() < 0.5:  # the validation set scores subjects, not empty frames
            pha, fgr, _ = real_sample(size[0], size[1], rng, photos)
        name = f'{i:05d}.png'
        if all(os.path.exists(os.path.join(root, k, name)) for k in ('pha', 'fgr')):
            continue
        write_image(os.path.join(root, 'pha', name), pha[:, :, 0])
        write_image(os.path.join(root, 'fgr', name), fgr)
    return root
