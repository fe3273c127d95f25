"""A whole procedural scene: background, foreground layers, one camera (light, vignetting, focus)."""
import cv2
import numpy as np

from .drawing import _c3, _tint
from .backgrounds import _background
from .foregrounds import _Layers, _objects, _person, _shade


def _vignette(rng, h, w):
    """Lens vignetting: a smooth (h, w) darkening towards the corners (built at 1/8 size)."""
    sh, sw = max(2, h // 8), max(2, w // 8)
    yy, xx = np.ogrid[0:sh, 0:sw]
    r2 = (((xx - sw / 2) / (sw / 2)) ** 2 + ((yy - sh / 2) / (sh / 2)) ** 2).astype(np.float32)
    return cv2.resize(1.0 - rng.uniform(0.0, 0.25) * r2 / 2, (w, h), interpolation=cv2.INTER_LINEAR)


def synthesize(h, w, rng):
    """One synthetic sample: (pha (h, w, 1), fgr (h, w, 3), bgr (h, w, 3)) float32 in [0, 1].

    Draws everything from the numpy Generator `rng`.
    """
    bgr = _background(rng, h, w)
    layers = _Layers(h, w)
    if rng.random() < 0.8:
        if rng.random() < 0.12:  # a second, more distant person behind the first
            cx = w * rng.uniform(0.1, 0.9)
            solid_b, _ = _person(rng, h, w, layers, bgr, scale=rng.uniform(0.5, 0.8), cx=cx)
            solid, unit = _person(rng, h, w, layers, bgr, cx=(cx + w * rng.uniform(0.3, 0.7)) % w)
            solid = np.maximum(solid, solid_b)
        else:
            solid, unit = _person(rng, h, w, layers, bgr)
    else:
        solid, unit = _objects(rng, h, w, layers)
    shade = _shade(rng, solid.astype(np.float32) / 255, unit)
    pha, fgr = layers.result()
    lens = _vignette(rng, h, w)  # the camera darkens subject and background alike
    light = shade * lens
    if rng.random() < 0.2:  # rim light from behind: a bright band along the silhouette
        inner = cv2.distanceTransform((pha > 0.5).astype(np.uint8), cv2.DIST_L2, 3)
        rim = np.exp(-inner / max(1.0, rng.uniform(0.005, 0.02) * unit))
        light = light + rng.uniform(0.3, 0.8) * rim
    # One scene light colour for both layers, plus a small extra tint on the lit subject.
    scene = 1.0 + rng.uniform(-0.08, 0.08, 3)
    fgr = _tint(fgr * _c3(light), scene * (1.0 + rng.uniform(-0.03, 0.03, 3)) * rng.uniform(0.85, 1.15))
    bgr = np.clip(_tint(bgr * _c3(lens), scene), 0, 1)
    if rng.random() < 0.3:
        # Light wrap: light from a bright background spills over the subject's edges, so
        # real edge colours carry some background colour (within the foreground colour).
        f = 4
        small = lambda x: cv2.resize(x, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
        sigma = max(0.7, rng.uniform(0.005, 0.015) * max(h, w) / f)
        spill = cv2.resize(cv2.GaussianBlur(small(bgr), (0, 0), sigma), (w, h), interpolation=cv2.INTER_LINEAR)
        core = cv2.resize(cv2.GaussianBlur(small(pha), (0, 0), sigma), (w, h), interpolation=cv2.INTER_LINEAR)
        weight = _c3(rng.uniform(0.1, 0.35) * np.clip(1.0 - core, 0, 1))
        fgr = fgr * (1 - weight) + spill * weight
    fgr = np.clip(fgr, 0, 1)
    r = rng.random()
    if r < 0.08:
        pha, fgr = motion_blur(pha, fgr, rng, int(0.03 * unit))
    elif r < 0.16:  # slight defocus of the subject
        s = rng.uniform(0.6, 2.0)
        pha, fgr = blur_premultiplied(pha, fgr, lambda x: cv2.GaussianBlur(x, (0, 0), s))
    return pha[:, :, None].astype(np.float32), fgr.astype(np.float32), bgr.astype(np.float32)


def motion_blur(pha, fgr, rng, longest):
    """Motion blur along a random direction, of a random length in [3, longest) pixels."""
    k = int(rng.integers(3, max(4, longest)))
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2] = 1.0 / k
    rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), rng.uniform(0, 180), 1)
    kernel = cv2.warpAffine(kernel, rot, (k, k))
    kernel /= kernel.sum()
    return blur_premultiplied(pha, fgr, lambda x: cv2.filter2D(x, -1, kernel))


def blur_premultiplied(pha, fgr, blur):
    """Blur a foreground the physical way: blur alpha and premultiplied colour, then divide."""
    pre = blur(fgr * _c3(pha))
    a = np.clip(blur(pha), 0, 1)
    inside = a > 1e-3
    fgr = fgr.copy()
    fgr[inside] = pre[inside] / a[inside][:, None]
    return a.astype(np.float32), np.clip(fgr, 0, 1)
