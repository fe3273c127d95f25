"""Textures of the procedural scenes: fabric, skin, hair, paint, floors.

Functions of the box size (h, w), so layers only texture the pixels they cover.
"""
import math

import cv2
import numpy as np

from .drawing import _c3, _colorize, _normal, _random_color, draw_strands, fractal_noise


def _pattern(rng, h, w, unit):
    """A fabric-like pattern field in [0, 1], (h, w): stripes, checks, dots, knit or a print.

    Computed at half resolution (patterns are never finer than a few pixels here).
    """
    kind = rng.choice(['stripes', 'checks', 'print', 'dots', 'knit'])
    if kind == 'knit':
        return np.clip(0.5 + 0.3 * _normal(rng, h, w), 0, 1)
    if kind == 'print':
        n = fractal_noise(rng, h, w, base=int(rng.integers(4, 12)), octaves=3)
        return np.clip(0.5 + 0.5 * n, 0, 1)
    sh, sw = max(1, (h + 1) // 2), max(1, (w + 1) // 2)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32) * 2.0
    a = rng.uniform(0, math.pi)
    period = max(3.0, rng.uniform(0.02, 0.12) * unit)
    u = (xx * math.cos(a) + yy * math.sin(a)) / period + rng.uniform(0, 1)
    v = (-xx * math.sin(a) + yy * math.cos(a)) / period
    if kind == 'stripes':
        duty = rng.uniform(0.2, 0.6)
        p = np.clip((np.abs((u % 1.0) - 0.5) - 0.5 + duty) * 6, 0, 1)
    elif kind == 'checks':
        p = 0.5 * (np.sin(2 * math.pi * u) > 0) + 0.5 * (np.sin(2 * math.pi * v) > 0)
    else:
        d = np.hypot((u % 1.0) - 0.5, (v % 1.0) - 0.5)
        p = np.clip((rng.uniform(0.15, 0.35) - d) * 12, 0, 1)
    return cv2.resize(p.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


def _fabric(rng, unit, base=None):
    """A clothing texture maker: returns fn(box) -> (h, w, 3) with a base colour, maybe a
    second colour in a pattern, soft folds and fibre grain. Colours are drawn now, so the
    result does not depend on which box it is asked for."""
    base = _random_color(rng) if base is None else np.asarray(base, np.float32)
    second = _random_color(rng) if rng.random() < 0.6 else None
    fold_amp, grain = rng.uniform(0.05, 0.2), rng.uniform(0.01, 0.05)
    seed = rng.integers(2 ** 63)

    def make(box):
        r = np.random.default_rng(seed)
        h, w = box[0].stop - box[0].start, box[1].stop - box[1].start
        if second is not None:
            p = _pattern(r, h, w, unit)
            img = _colorize(1.0 - p, base) + _colorize(p, second)
        else:
            img = _colorize(np.ones((h, w), np.float32), base)
        # Folds: low-frequency light variation; grain: fibres.
        light = 1.0 + fold_amp * fractal_noise(r, h, w, base=int(r.integers(3, 8)), octaves=3) + grain * _normal(r, h, w)
        return np.clip(img * _c3(light), 0, 1)
    return make


_SKIN_TONES = np.array([
    [0.98, 0.85, 0.75], [0.94, 0.76, 0.63], [0.87, 0.67, 0.53], [0.78, 0.58, 0.43],
    [0.65, 0.45, 0.32], [0.50, 0.33, 0.22], [0.36, 0.24, 0.16], [0.27, 0.18, 0.12]], np.float32)

_HAIR_COLORS = np.array([
    [0.05, 0.04, 0.035], [0.12, 0.08, 0.05], [0.24, 0.15, 0.08], [0.38, 0.25, 0.14],
    [0.70, 0.56, 0.34], [0.85, 0.74, 0.52], [0.50, 0.20, 0.08], [0.62, 0.62, 0.60], [0.90, 0.90, 0.88]], np.float32)


def _skin(rng, h, w, tone):
    """Skin texture (h, w, 3): the tone with blotchy redness variation and pores."""
    blotch = fractal_noise(rng, h, w, base=6, octaves=3)
    light = 1.0 + 0.04 * blotch + 0.012 * _normal(rng, h, w)
    img = _colorize(light, tone)
    img[:, :, 0] += 0.02 * blotch  # redness follows the blotches
    return np.clip(img, 0, 1)


def _hair_texture(rng, h, w, color, curl=0.1):
    """Hair colour (h, w, 3): streaks and individual dark/bright strands along the (mostly
    downward) flow, plus a soft sheen -- hair has visible structure, not a flat colour."""
    k = max(3, int(0.04 * max(h, w)) | 1)
    streaks = cv2.blur(_normal(rng, h, w), (1, k))  # vertical box blur -> vertical streaks
    streaks /= float(cv2.meanStdDev(streaks)[1][0, 0]) + 1e-6
    sheen = fractal_noise(rng, h, w, base=4, octaves=2)
    light = 1.0 + 0.12 * streaks + 0.12 * sheen
    n = int(np.clip(h * w / 400, 10, 600))
    for sign, amount in ((-1, 0.45), (1, 0.3)):  # darker and brighter strands
        lines = np.zeros((h, w), np.uint8)
        starts = np.stack([rng.uniform(0, w, n), rng.uniform(-0.1 * h, h, n)], 1)
        dirs = math.pi / 2 + rng.normal(0, 0.3, n)
        draw_strands(rng, lines, starts, dirs, (0.05 * h, 0.3 * h), curl=curl, intensity=(0.3, 1.0))
        light += np.float32(sign * amount / 255) * lines
    return np.clip(_colorize(light, color) + _c3(0.03 * np.clip(sheen, 0, None)), 0, 1)
