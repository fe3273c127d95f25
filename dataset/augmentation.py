"""Augmentations for matting training, in numpy + OpenCV.

Two families live here:

1. **Per-sample transforms** (classes), used inside the datasets. They mirror the
   augmentations of the official BackgroundMattingV2 training (random affine + resize,
   horizontal flip, box blur, sharpen, colour jitter) but work on float32 HWC arrays in
   [0, 1]. Every transform is called as ``transform(images, rng)`` where ``images`` is a list
   of arrays and ``rng`` a ``numpy.random.Generator``; the *same* random parameters are
   applied to every image of the list. That is what keeps an alpha matte and its foreground
   aligned: ``RandomAffineAndResize(...)([pha, fgr], rng)`` warps both with one matrix.
   Passing a single array instead of a list returns a single array, so the same classes
   serve single-image pipelines (backgrounds). The ``Pair*`` names are aliases kept for
   readers who know the official code.

2. **Per-step batch augmentations** (functions), called by the training loop on numpy
   batches in NCHW float32 [0, 1]: ``random_crop``, ``add_shadow``, ``composite``,
   ``add_noise``, ``jitter_plate_color``, ``change_exposure``, ``misalign_plate``,
   ``jpeg_artifacts`` and ``augment_batch``, which chains them the way the official training
   loop does. They simulate what separates a real background plate from the background
   behind the person: cast shadows, sensor noise, camera shake, auto-exposure and white
   balance drift.

Randomness: nothing here depends on global random state. Every function/transform draws
from the ``numpy.random.Generator`` it is given (OpenCV's faster Gaussian generator is used
for noise, re-seeded from that Generator right before each use), so a run is reproducible from its seeds (the
datasets seed one Generator per sample from (seed, epoch, index); the training loop seeds
one per step from (seed, step)). All functions return new arrays; inputs are not modified.
"""
import math

import cv2
import numpy as np

__all__ = [
    'Transform', 'Compose', 'RandomAffineAndResize', 'RandomHorizontalFlip', 'RandomBoxBlur',
    'RandomSharpen', 'ColorJitter', 'ApplyOnlyAtIndices', 'ToCHW',
    'PairCompose', 'PairRandomAffineAndResize', 'PairRandomHorizontalFlip',
    'PairRandomBoxBlur', 'PairRandomSharpen', 'PairApplyOnlyAtIndices',
    'affine_matrix', 'color_jitter',
    'random_crop', 'add_shadow', 'composite', 'add_noise', 'jitter_plate_color',
    'change_exposure', 'misalign_plate', 'jpeg_artifacts', 'augment_batch', 'PLATE_CHANGES', 'SHADOW_PROB',
]

# How far the plate given to the model may drift from the background behind the subject, per
# preset: keyword arguments of jitter_plate_color, misalign_plate, change_exposure and add_noise
# (missing: their defaults). 'official' keeps the defaults, the official recipe (a plate shot
# minutes apart by a hand-held camera: hue shifts up to 36 degrees, shifts of 1 % of the width).
# 'light' is a plate shot with the same, fixed camera settings, as a tripod capture or an aligned
# hand-held plate gives: the large changes of 'official' are bigger than the difference a
# translucent or background-coloured subject makes, so a model trained on them learns to ignore
# exactly the faint differences that carry alpha. 'locked' is a camera on a tripod with exposure
# and white balance locked and a low-noise sensor: the plate differs from the shot by about what
# the evaluation's plates do (a slight tone change and sensor noise), so that differences of a
# few percent, the partial alpha of translucent layers and soft edges, are not learnt as noise.
PLATE_CHANGES = {
    'official': {'jitter': {}, 'misalign': {}},
    'light': {'jitter': dict(brightness=0.06, contrast=0.06, saturation=0.06, hue=0.015),
              'misalign': dict(degrees=0.3, translate=0.003)},
    'locked': {'jitter': dict(brightness=0.03, contrast=0.03, saturation=0.03, hue=0.008),
               'misalign': dict(degrees=0.15, translate=0.0015),
               'exposure': dict(max_ev=0.1, max_white_balance=0.015),
               'noise': dict(max_sigma=0.015, max_shot=0.001)},
}

# How often a training sample gets a cast shadow on its background (the official recipe's 0.3).
SHADOW_PROB = 0.3

# Rec. 601 luma weights: the grayscale used by colour jitter (same convention as the usual
# image libraries, so jitter strengths mean what people expect).
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------

def _as_hwc(out, like):
    """OpenCV drops a trailing channel axis of size 1; put it back so shapes stay HWC."""
    if out.ndim == 2 and like.ndim == 3:
        out = out[:, :, None]
    return out


def _uniform(rng, bounds):
    """Draw from [lo, hi]; a scalar b means [-b, b]."""
    if np.isscalar(bounds):
        bounds = (-bounds, bounds)
    return float(rng.uniform(bounds[0], bounds[1]))


def affine_matrix(center_in, center_out, angle=0.0, translate=(0.0, 0.0), scale=(1.0, 1.0),
                  shear=(0.0, 0.0)):
    """2x3 matrix mapping input pixel coordinates to output pixel coordinates.

    The input point `center_in` lands on `center_out + translate` after scaling (sx, sy),
    shearing (degrees along x and y) and rotating by `angle` degrees about it. Building one
    matrix and warping once avoids the blur of chained resamplings.
    """
    sx, sy = scale if not np.isscalar(scale) else (scale, scale)
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    shr = np.array([[1.0, math.tan(math.radians(shear[0]))],
                    [math.tan(math.radians(shear[1])), 1.0]])
    lin = rot @ shr @ np.diag([sx, sy])
    offset = np.asarray(center_out, float) + np.asarray(translate, float) - lin @ np.asarray(center_in, float)
    return np.hstack([lin, offset[:, None]]).astype(np.float64)


def _warp(img, matrix, out_size, border='constant'):
    """cv2.warpAffine on an HWC float image; `out_size` is (H, W)."""
    mode = cv2.BORDER_REFLECT_101 if border == 'reflect' else cv2.BORDER_CONSTANT
    out = cv2.warpAffine(img, matrix, (int(out_size[1]), int(out_size[0])), flags=cv2.INTER_LINEAR,
                         borderMode=mode, borderValue=0)
    return _as_hwc(out, img)


def _box_blur(img, radius):
    """Box blur of the given radius (kernel 2r+1), like a photo editor's box blur."""
    if radius <= 0:
        return img
    k = 2 * int(radius) + 1
    return _as_hwc(cv2.blur(img, (k, k), borderType=cv2.BORDER_REPLICATE), img)


# 3x3 sharpening kernel: identity plus a Laplacian-style high-pass weighted 1/8 per
# neighbour; the kernel sums to 1, so flat areas are unchanged.
_SHARPEN_KERNEL = np.full((3, 3), -1.0 / 8.0, np.float32)
_SHARPEN_KERNEL[1, 1] = 2.0


def _sharpen(img):
    out = cv2.filter2D(img, -1, _SHARPEN_KERNEL, borderType=cv2.BORDER_REPLICATE)
    return np.clip(_as_hwc(out, img), 0.0, 1.0)


def color_jitter(img, rng, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0):
    """Random brightness/contrast/saturation/hue change of one RGB HWC float image.

    Factors are drawn from [1-b, 1+b] (hue: a shift in [-h, h] of the full colour circle)
    and the four operations are applied in a random order, as the common ColorJitter does.
    Images that are not 3-channel (alpha mattes) are returned unchanged.
    """
    if img.ndim != 3 or img.shape[2] != 3:
        return img
    ops = []
    if brightness:
        ops.append(('b', rng.uniform(max(0.0, 1 - brightness), 1 + brightness)))
    if contrast:
        ops.append(('c', rng.uniform(max(0.0, 1 - contrast), 1 + contrast)))
    if saturation:
        ops.append(('s', rng.uniform(max(0.0, 1 - saturation), 1 + saturation)))
    if hue:
        ops.append(('h', rng.uniform(-hue, hue)))
    out = np.ascontiguousarray(img, dtype=np.float32)
    for j in rng.permutation(len(ops)):
        kind, f = ops[j]
        f = np.float32(f)
        if kind == 'b':
            out = out * f
        elif kind == 'c':
            # Contrast pivots around the mean grey level, so the average brightness stays.
            out = _blend(out, np.float32(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).mean()), f)
        elif kind == 's':
            gray = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
            out = _blend(out, cv2.merge([gray, gray, gray]), f)
        else:
            hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)  # float input: H in [0, 360)
            h, s, v = cv2.split(hsv)
            h += np.float32(360.0 * f)  # |shift| < 360: one wrap-around each way suffices (np.mod is slow)
            h[h < 0] += 360.0
            h[h >= 360.0] -= 360.0
            out = cv2.cvtColor(cv2.merge([h, s, v]), cv2.COLOR_HSV2RGB)
        out = np.clip(out, 0.0, 1.0)
    return out


def _blend(img, other, factor):
    """factor * img + (1 - factor) * other: the core of contrast and saturation changes."""
    return img * factor + other * (1.0 - factor)


# --------------------------------------------------------------------------------------
# Per-sample transforms: transform(images, rng) -> images, same parameters for every image
# --------------------------------------------------------------------------------------

class Transform:
    """Base class of the per-sample transforms.

    Call as ``t(images, rng)``: ``images`` is a list/tuple of float32 HWC arrays in [0, 1]
    (e.g. pha (H, W, 1) and fgr (H, W, 3)), or one array; ``rng`` a numpy Generator (None
    draws fresh OS entropy, i.e. not reproducible). Returns a list (or one array if one
    array was given). Subclasses implement ``apply(list, rng) -> list``.
    """

    def __call__(self, images, rng=None):
        if rng is None:
            rng = np.random.default_rng()
        if isinstance(images, np.ndarray):
            return self.apply([images], rng)[0]
        return self.apply(list(images), rng)

    def apply(self, images, rng):
        raise NotImplementedError

    def __repr__(self):
        args = ', '.join(f'{k}={v!r}' for k, v in vars(self).items())
        return f'{type(self).__name__}({args})'


class Compose(Transform):
    """Apply transforms in order, all drawing from the same Generator. Shapes follow them."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def apply(self, images, rng):
        for t in self.transforms:
            images = t(images, rng)
        return images


class RandomAffineAndResize(Transform):
    """Random affine warp that also resizes to a fixed output size: (H, W, C) -> (*size, C).

    Scale is relative to the factor that makes the image just *cover* the output (so
    scale=1 fills the frame and scale<1 shrinks the subject, leaving empty borders);
    translate is a fraction of the output size; degrees/shear are ranges in degrees.
    Everything is done with one cv2.warpAffine per image. When the overall shrink is strong
    the image is first reduced with area averaging, because bilinear warping alone would
    alias thin structures such as hair in the alpha matte.

    border='constant' fills uncovered pixels with 0 (right for pha/fgr: nothing there);
    border='reflect' mirrors the image (right for backgrounds, where black wedges from the
    rotation would be an unrealistic cue).
    """

    def __init__(self, size, degrees=(-5, 5), translate=(0.1, 0.1), scale=(0.4, 1.0),
                 shear=(-5, 5), border='constant'):
        self.size = (int(size[0]), int(size[1]))
        self.degrees = degrees
        self.translate = translate
        self.scale = scale
        self.shear = shear
        self.border = border

    def apply(self, images, rng):
        if not images:
            return images
        h, w = images[0].shape[:2]
        if any(img.shape[:2] != (h, w) for img in images):
            # e.g. a matte saved at another resolution than its foreground: warping both with
            # one matrix would misalign them silently.
            raise ValueError('images of one sample differ in size: '
                             + ', '.join(f'{img.shape[1]}x{img.shape[0]}' for img in images))
        out_h, out_w = self.size
        cover = max(out_h / h, out_w / w)
        s = _uniform(rng, self.scale) * cover
        angle = _uniform(rng, self.degrees)
        tx = _uniform(rng, self.translate[0]) * out_w
        ty = _uniform(rng, self.translate[1]) * out_h
        shear = (_uniform(rng, self.shear), _uniform(rng, self.shear))
        return [self._one(img, s, angle, (tx, ty), shear) for img in images]

    def _one(self, img, s, angle, translate, shear):
        h, w = img.shape[:2]
        out_h, out_w = self.size
        # Pre-shrink with INTER_AREA so the warp itself never reduces by more than ~1.5x.
        pre = min(1.0, s * 1.5)
        if pre < 1.0:
            small_w, small_h = max(1, round(w * pre)), max(1, round(h * pre))
            img = _as_hwc(cv2.resize(img, (small_w, small_h), interpolation=cv2.INTER_AREA), img)
            fx, fy = small_w / w, small_h / h
            h, w = small_h, small_w
        else:
            fx = fy = 1.0
        m = affine_matrix(((w - 1) / 2, (h - 1) / 2), ((out_w - 1) / 2, (out_h - 1) / 2),
                          angle, translate, (s / fx, s / fy), shear)
        return _warp(img, m, (out_h, out_w), self.border)


class RandomHorizontalFlip(Transform):
    """Mirror left-right with probability p (all images or none). Shapes unchanged."""

    def __init__(self, p=0.5):
        self.p = p

    def apply(self, images, rng):
        if rng.random() < self.p:
            images = [np.ascontiguousarray(img[:, ::-1]) for img in images]
        return images


class RandomBoxBlur(Transform):
    """With probability `prob`, box-blur with a radius drawn from 0..max_radius. Shapes unchanged.

    Simulates defocus/low-quality sources; one radius for all images so the alpha blurs
    exactly like the foreground colour.
    """

    def __init__(self, prob, max_radius):
        self.prob = prob
        self.max_radius = int(max_radius)

    def apply(self, images, rng):
        if rng.random() < self.prob:
            r = int(rng.integers(0, self.max_radius + 1))
            images = [_box_blur(img, r) for img in images]
        return images


class RandomSharpen(Transform):
    """With probability `prob`, apply a 3x3 sharpening filter (clipped to [0, 1]). Shapes unchanged."""

    def __init__(self, prob):
        self.prob = prob

    def apply(self, images, rng):
        if rng.random() < self.prob:
            images = [_sharpen(img) for img in images]
        return images


class ColorJitter(Transform):
    """Random brightness/contrast/saturation/hue (see `color_jitter`). (H, W, 3) -> (H, W, 3).

    With several images, each gets its own draw; wrap it in ApplyOnlyAtIndices to touch
    only the foreground of a (pha, fgr) pair. Non-RGB images pass through unchanged.
    """

    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0):
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue

    def apply(self, images, rng):
        return [color_jitter(img, rng, self.brightness, self.contrast, self.saturation, self.hue)
                for img in images]


class ApplyOnlyAtIndices(Transform):
    """Apply `transform` only to the images at `indices` (e.g. [1]: the fgr of (pha, fgr))."""

    def __init__(self, indices, transform):
        self.indices = list(indices)
        self.transform = transform

    def apply(self, images, rng):
        picked = self.transform([images[i] for i in self.indices], rng)
        images = list(images)
        for i, img in zip(self.indices, picked):
            images[i] = img
        return images


class ToCHW(Transform):
    """HWC float -> contiguous CHW float32, the layout the model and DataLoader expect."""

    def apply(self, images, rng):
        out = []
        for img in images:
            if img.ndim == 2:
                img = img[:, :, None]
            out.append(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))
        return out


# Names of the official code, for readers comparing the two. Every transform here already
# applies identical parameters to all images it is given, so no separate pair classes exist.
PairCompose = Compose
PairRandomAffineAndResize = RandomAffineAndResize
PairRandomHorizontalFlip = RandomHorizontalFlip
PairRandomBoxBlur = RandomBoxBlur
PairRandomSharpen = RandomSharpen
PairApplyOnlyAtIndices = ApplyOnlyAtIndices


# --------------------------------------------------------------------------------------
# Per-step batch augmentations on NCHW float32 numpy batches
# --------------------------------------------------------------------------------------

def _chosen(rng, n, prob):
    """Indices of the samples of a batch of n that an augmentation of probability prob hits."""
    return np.flatnonzero(rng.random(n) < prob)


def _resize_chw(img, size):
    """Resize one CHW image to size (H, W), area-averaging when shrinking."""
    h, w = size
    hwc = img.transpose(1, 2, 0)
    interp = cv2.INTER_AREA if (h < img.shape[1] and w < img.shape[2]) else cv2.INTER_LINEAR
    out = _as_hwc(cv2.resize(hwc, (w, h), interpolation=interp), hwc)
    return out.transpose(2, 0, 1)


def random_crop(arrays, rng, size_range=(256, 512), multiple=4):
    """Resize-and-center-crop every batch to one random size, as the official training step does.

    arrays: list of (N, C, H, W) float32 batches with the same H, W (pha, fgr, bgr).
    Draws a target (h, w) uniformly in [size_range[0], size_range[1]) rounded down to
    `multiple`, scales the batches so they cover it, and center-crops. Random sizes make
    the model robust to resolution and aspect ratio. Returns a list of (N, C, h, w).
    """
    H, W = arrays[0].shape[2:]
    lo, hi = size_range
    th = max(multiple, int(rng.integers(lo, hi)) // multiple * multiple)
    tw = max(multiple, int(rng.integers(lo, hi)) // multiple * multiple)
    s = max(th / H, tw / W)
    rh, rw = max(th, round(H * s)), max(tw, round(W * s))
    y0, x0 = (rh - th) // 2, (rw - tw) // 2
    out = []
    for batch in arrays:
        resized = np.stack([_resize_chw(img, (rh, rw)) for img in batch]) if (rh, rw) != (H, W) else batch
        out.append(np.ascontiguousarray(resized[:, :, y0:y0 + th, x0:x0 + tw], dtype=np.float32))
    return out


def add_shadow(bgr, pha, rng, prob=SHADOW_PROB, strength=(0.1, 0.5), degrees=(-5, 5), translate=(0.2, 0.2),
               scale=(0.5, 1.5), shear=(-15, 15), blur=(0.02, 0.08)):
    """Darken the background with a soft shadow shaped like the subject: (N,3,H,W) -> (N,3,H,W).

    For each sample (with probability `prob`) the alpha matte is affine-warped (the shadow
    falls beside/behind the person, stretched and sheared), blurred with two box passes of
    a size that is a fraction `blur` of the image (two passes look like a real penumbra,
    one looks like a box) and *multiplied* into the background, since a shadow removes a
    fraction of the light rather than a fixed amount. Each channel gets a slightly
    different strength: shadows are lit by bluer sky/ambient light.
    Use the result as the background of the composite only, never as the plate given to the
    model: that mismatch is exactly what the model must learn to ignore.
    """
    out = bgr.astype(np.float32, copy=True)
    n, _, h, w = bgr.shape
    for i in _chosen(rng, n, prob):
        a = pha[i, 0]
        m = affine_matrix(((w - 1) / 2, (h - 1) / 2), ((w - 1) / 2, (h - 1) / 2), _uniform(rng, degrees),
                          (_uniform(rng, translate[0]) * w, _uniform(rng, translate[1]) * h),
                          _uniform(rng, scale), (_uniform(rng, shear), _uniform(rng, shear)))
        shadow = cv2.warpAffine(a, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        k = max(1, int(_uniform(rng, blur) * min(h, w)))
        shadow = cv2.blur(cv2.blur(shadow, (k, k)), (k, k))
        s = _uniform(rng, strength) * (1.0 + rng.uniform(-0.1, 0.1, size=3)).astype(np.float32)
        out[i] *= 1.0 - np.clip(s[:, None, None] * shadow[None], 0.0, 1.0)
    return out


def composite(fgr, pha, bgr):
    """src = fgr * pha + bgr * (1 - pha): the matting equation. Works on any broadcastable arrays."""
    return (fgr * pha + bgr * (1.0 - pha)).astype(np.float32)


def add_noise(src, bgr, rng, prob=0.4, max_sigma=0.03, max_shot=0.002):
    """Independent sensor noise on the composite and the plate: returns (src, bgr), same shapes.

    For the chosen samples, each image gets Gaussian noise whose variance is
    sigma^2 + k * x (read noise plus signal-dependent shot noise, as a camera sensor has),
    with sigma ~ U(0, max_sigma) and k ~ U(0, max_shot) drawn separately for src and bgr,
    because two captures never share their noise. max_shot=0 gives the official
    signal-independent noise.
    """
    src = src.astype(np.float32, copy=True)
    bgr = bgr.astype(np.float32, copy=True)
    for i in _chosen(rng, len(src), prob):
        for img in (src, bgr):
            std = np.sqrt(np.float32(rng.uniform(0, max_sigma) ** 2) + np.float32(rng.uniform(0, max_shot)) * img[i])
            img[i] = np.clip(img[i] + _gaussian(rng, img[i].shape) * std, 0.0, 1.0)
    return src, bgr


def _gaussian(rng, shape):
    """Standard normal float32 noise of `shape`, a pure function of `rng`'s state.

    Drawn by OpenCV's generator, about 3x faster than numpy's, after seeding it from `rng`
    (OpenCV's generator is per thread, and nothing runs between seeding and drawing).
    """
    out = np.empty(shape, np.float32)
    cv2.setRNGSeed(int(rng.integers(2 ** 31)))
    cv2.randn(out.reshape(-1, shape[-1]), 0.0, 1.0)
    return out


def jitter_plate_color(bgr, rng, prob=0.8, brightness=0.18, contrast=0.18, saturation=0.18, hue=0.1):
    """Colour-jitter the background plate per sample: (N,3,H,W) -> (N,3,H,W).

    The plate is shot at another moment than the source, with other camera settings and
    light; the model must not read a global colour difference as foreground.
    """
    out = bgr.astype(np.float32, copy=True)
    for i in _chosen(rng, len(bgr), prob):
        img = np.ascontiguousarray(out[i].transpose(1, 2, 0))
        out[i] = color_jitter(img, rng, brightness, contrast, saturation, hue).transpose(2, 0, 1)
    return out


def change_exposure(bgr, rng, prob=0.3, max_ev=0.25, max_white_balance=0.04):
    """Exposure and white-balance change of the plate: (N,3,H,W) -> (N,3,H,W).

    Done in (approximately) linear light, where exposure is a multiplication: the image is
    linearised with gamma 2.2, scaled by 2**ev (ev ~ U(-max_ev, max_ev)) and per-channel
    gains 1 +- max_white_balance, then re-encoded. This is what an auto-exposure camera does
    between the plate and the shot, and unlike a plain brightness factor it keeps the
    shadows/highlights relation of a real camera.
    """
    out = bgr.astype(np.float32, copy=True)
    for i in _chosen(rng, len(bgr), prob):
        gain = 2.0 ** rng.uniform(-max_ev, max_ev) * (1.0 + rng.uniform(-max_white_balance, max_white_balance, 3))
        lin = np.power(np.clip(out[i], 0, 1), 2.2) * gain.astype(np.float32)[:, None, None]
        out[i] = np.power(np.clip(lin, 0, 1), 1 / 2.2)
    return out


def misalign_plate(bgr, rng, prob=0.3, degrees=1.0, translate=0.01, scale=0.0):
    """Small random rotation/shift (and zoom) of the plate: (N,3,H,W) -> (N,3,H,W).

    A hand-held or bumped camera never frames the plate exactly like the shot. Borders are
    reflected, because a real misaligned plate has content there, not black.
    """
    out = bgr.astype(np.float32, copy=True)
    n, _, h, w = bgr.shape
    for i in _chosen(rng, n, prob):
        m = affine_matrix(((w - 1) / 2, (h - 1) / 2), ((w - 1) / 2, (h - 1) / 2), _uniform(rng, degrees),
                          (_uniform(rng, translate) * w, _uniform(rng, translate) * h),
                          1.0 + _uniform(rng, scale))
        img = np.ascontiguousarray(out[i].transpose(1, 2, 0))
        out[i] = _warp(img, m, (h, w), border='reflect').transpose(2, 0, 1)
    return out


def jpeg_artifacts(batch, rng, prob=0.1, quality=(60, 95)):
    """Round-trip chosen samples through JPEG at a random quality: (N,3,H,W) -> (N,3,H,W).

    Real inputs are mostly compressed photos/video frames; blocking and ringing near edges
    should not be taken for foreground detail.
    """
    out = batch.astype(np.float32, copy=True)
    for i in _chosen(rng, len(batch), prob):
        q = int(rng.integers(quality[0], quality[1] + 1))
        img = (np.clip(out[i].transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)
        ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, q])
        dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        out[i] = dec.astype(np.float32).transpose(2, 0, 1) / 255.0
    return out


def augment_batch(pha, fgr, bgr, rng, crop=(256, 512), shadow_prob=SHADOW_PROB, noise_prob=0.4, jitter_prob=0.8,
                  misalign_prob=0.3, exposure_prob=0.3, jpeg_prob=0.1, plate_change='official'):
    """The per-step augmentation of the training loop, chained in the official order.

    pha (N,1,H,W), fgr (N,3,H,W), bgr (N,3,H,W) float32 in [0, 1] (the clean background).
    Returns (src, bgr_plate, pha, fgr), each (N, C, h, w) float32: ``src`` is the composite
    the model sees (with shadow and noise), ``bgr_plate`` the background it is given (noisy,
    colour-jittered, misaligned, re-exposed), pha/fgr the targets (cropped like the rest).
    crop=None keeps the input size. Set a probability to 0 to switch a step off; the
    exposure and JPEG steps are additions to the official recipe (real photos need them).
    plate_change names the strengths of the plate jitter, shake, exposure change and sensor noise
    (``PLATE_CHANGES``).
    """
    if plate_change not in PLATE_CHANGES:
        raise ValueError(f'unknown plate change {plate_change!r}; use one of {", ".join(PLATE_CHANGES)}')
    change = PLATE_CHANGES[plate_change]
    if crop is not None:
        pha, fgr, bgr = random_crop([pha, fgr, bgr], rng, crop)
    src_bgr = add_shadow(bgr, pha, rng, prob=shadow_prob)
    src = composite(fgr, pha, src_bgr)
    src, bgr = add_noise(src, bgr, rng, prob=noise_prob, **change.get('noise', {}))
    bgr = jitter_plate_color(bgr, rng, prob=jitter_prob, **change['jitter'])
    bgr = change_exposure(bgr, rng, prob=exposure_prob, **change.get('exposure', {}))
    bgr = misalign_plate(bgr, rng, prob=misalign_prob, **change['misalign'])
    src = jpeg_artifacts(src, rng, prob=jpeg_prob)
    bgr = jpeg_artifacts(bgr, rng, prob=jpeg_prob)
    return src, bgr, pha.astype(np.float32), fgr.astype(np.float32)
