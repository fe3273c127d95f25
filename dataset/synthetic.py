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
"""
import math
import os

import cv2
import numpy as np
import paddle

from utils.image_io import write_image
from . import augmentation as A

__all__ = ['SyntheticMattingDataset', 'synthesize', 'make_sample_pair', 'write_synthetic_dataset',
           'fractal_noise']


# --------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------

def fractal_noise(rng, h, w, channels=1, base=3, octaves=5, persistence=0.55):
    """Multi-octave value noise, zero mean and unit std: (h, w) or (h, w, channels) float32.

    `base` is the number of cells across the longer side at the coarsest octave; each
    octave doubles it and multiplies the amplitude by `persistence`. Random grids are
    upsampled with bicubic interpolation, which is far cheaper than per-pixel noise. When
    even the finest octave is smooth at pixel scale, the sum is built at a reduced size and
    upsampled once at the end (most textures here are low-frequency; this is the main
    saving of the generator).
    """
    longest = max(h, w)
    finest = base * 2 ** (octaves - 1)
    f = max(1, int(longest / finest / 4))  # keep >= 4 pixels per finest cell
    sh, sw = max(2, -(-h // f)), max(2, -(-w // f))
    out = np.zeros((sh, sw, channels), np.float32)
    amp = 1.0
    for o in range(octaves):
        cells = base * 2 ** o
        gh = max(2, int(math.ceil(cells * h / longest)) + 1)
        gw = max(2, int(math.ceil(cells * w / longest)) + 1)
        if gh > sh or gw > sw:
            break
        grid = rng.standard_normal((gh, gw, channels), dtype=np.float32)
        out += amp * cv2.resize(grid, (sw, sh), interpolation=cv2.INTER_CUBIC).reshape(sh, sw, channels)
        amp *= persistence
    out -= out.mean(axis=(0, 1))
    out /= out.std(axis=(0, 1)) + 1e-6
    if (sh, sw) != (h, w):
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, channels)
    return out[:, :, 0] if channels == 1 else out


def _hsv(h, s, v):
    """One RGB colour (float32 [0,1]) from hue in degrees, saturation, value."""
    px = np.array([[[h % 360.0, s, v]]], np.float32)
    return cv2.cvtColor(px, cv2.COLOR_HSV2RGB)[0, 0]


def _random_color(rng, sat=(0.0, 0.8), val=(0.15, 0.95)):
    return _hsv(rng.uniform(0, 360), rng.uniform(*sat), rng.uniform(*val))


# Speed note: numpy broadcasting of an (h, w) field against 3 colour channels runs an
# inner loop of length 3 and is several times slower than the flat operations below;
# these helpers are what keeps a 512x512 sample within a few tens of milliseconds.

def _c3(field):
    """(h, w) -> (h, w, 3) copy."""
    return cv2.merge([field, field, field])


def _colorize(field, color):
    """(h, w) field times an RGB colour -> (h, w, 3)."""
    return cv2.merge([field * np.float32(c) for c in color])


def _tint(img, color):
    """(h, w, 3) image times a per-channel factor (3,) -> (h, w, 3)."""
    h, w = img.shape[:2]
    return (img.reshape(h, w * 3) * np.tile(np.asarray(color, np.float32), w)).reshape(h, w, 3)


def _normal(rng, h, w):
    """Pixel-scale Gaussian grain (h, w), std ~0.7: generated at half size, then upsampled."""
    g = rng.standard_normal((max(1, (h + 1) // 2), max(1, (w + 1) // 2)), dtype=np.float32)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR)


def _bbox(alpha, pad=0):
    """Slices of the smallest box holding alpha > 0 (None if empty)."""
    rows = np.flatnonzero(alpha.max(axis=1) > 0)
    if rows.size == 0:
        return None
    cols = np.flatnonzero(alpha[rows[0]:rows[-1] + 1].max(axis=0) > 0)
    h, w = alpha.shape
    return (slice(max(0, rows[0] - pad), min(h, rows[-1] + 1 + pad)),
            slice(max(0, cols[0] - pad), min(w, cols[-1] + 1 + pad)))


def _over(img, alpha, color):
    """In place: img = color over img with `alpha`, only inside alpha's bounding box.

    color is an RGB triple, or fn(box) -> (box_h, box_w, 3) making a texture just for the box.
    """
    box = _bbox(alpha)
    if box is None:
        return img
    a = alpha[box]
    bh, bw = a.shape
    col = color(box) if callable(color) else np.broadcast_to(np.asarray(color, np.float32), (bh, bw, 3))
    a3 = _c3(a)
    img[box] = col * a3 + img[box] * (1.0 - a3)
    return img


def _soft_alpha(mask, sigma, edge, noise=None, noise_amp=0.0):
    """Binary mask (uint8 0/255 or float 0/1) -> smooth organic anti-aliased alpha, (h, w) float32.

    Gaussian-blurring the mask rounds corners and merges nearby shapes; a steep ramp around
    the 0.5 level then turns the blurred field back into a shape whose edge is `edge` pixels
    wide (the slope of a blurred step at its middle is 1/(sqrt(2 pi) sigma), hence the
    gain). Optional noise (an (h, w) field, or fn(h, w) -> field for the box) shifts the level set locally -- wispy, irregular
    edges; it is weighted by b(1-b) so that it acts only near the edge and never creates
    islands far from the shape. Work is limited to the mask's bounding box (plus the blur's
    reach) and wide blurs are done at half resolution, to save time.
    """
    h, w = mask.shape
    out = np.zeros((h, w), np.float32)
    box = _bbox(mask, pad=int(3 * sigma + 2 * edge + 4))
    if box is None:
        return out
    m = mask[box].astype(np.float32)
    if mask.dtype == np.uint8:
        m *= np.float32(1 / 255)
    bh, bw = m.shape
    if sigma >= 3 and min(bh, bw) >= 16:
        small = cv2.resize(m, (bw // 2, bh // 2), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigma / 2)
        b = cv2.resize(small, (bw, bh), interpolation=cv2.INTER_LINEAR)
    elif sigma > 0:
        b = cv2.GaussianBlur(m, (0, 0), sigma)
    else:
        b = m
    # A gain below 1 (edge wider than the blur allows) would lift alpha far from the shape
    # above 0; the blurred mask itself is then the softest possible edge.
    gain = max(1.0, math.sqrt(2 * math.pi) * max(sigma, 0.5) / max(edge, 0.3))
    level = b - np.float32(0.5)
    if noise is not None and noise_amp:
        field = noise(bh, bw) if callable(noise) else noise[box]
        level += np.float32(4.0 * noise_amp) * field * b * (1.0 - b)
    out[box] = np.clip(level * np.float32(gain) + np.float32(0.5), 0.0, 1.0)
    return out


def _pts(points):
    """Float points -> int32 array for OpenCV drawing with 4 bits of sub-pixel precision."""
    return np.round(np.asarray(points, np.float64) * 16).astype(np.int32)


def _fill_poly(canvas, points, value=255):
    cv2.fillPoly(canvas, [_pts(points)], value, lineType=cv2.LINE_8, shift=4)


def _ellipse(canvas, center, axes, angle, value=255, thickness=-1, line=cv2.LINE_8):
    cv2.ellipse(canvas, (int(round(center[0] * 16)), int(round(center[1] * 16))),
                (max(1, int(round(axes[0] * 16))), max(1, int(round(axes[1] * 16)))), angle, 0, 360,
                value, thickness, line, shift=4)


def _capsule(canvas, points, thickness, value=255):
    cv2.polylines(canvas, [_pts(points)], False, value, max(1, int(round(thickness))), cv2.LINE_8, shift=4)


def _rotate_points(points, center, degrees):
    a = math.radians(degrees)
    r = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    p = np.asarray(points, np.float64) - center
    return p @ r.T + center


def _strands(rng, canvas, starts, directions, length, curl=0.15, gravity=0.0, intensity=(0.2, 0.9),
             segments=8, bend=None):
    """Draw thin curved strands (hair, fur) as anti-aliased polylines on a uint8 canvas.

    Each strand starts at a point with a direction (radians), then bends by a random
    curvature (or the given per-strand `bend`, radians per segment) plus jitter at every
    segment, optionally pulled downwards (gravity).
    Intensity stands for sub-pixel thickness: a strand thinner than a pixel covers only a
    fraction of it, hence alpha < 1. Drawn in groups of rising intensity so that brighter
    strands win where they cross.
    """
    n = len(starts)
    if n == 0:
        return canvas
    lengths = rng.uniform(length[0], length[1], n)
    step = lengths / segments
    bend = rng.normal(0, curl, n) if bend is None else np.asarray(bend, np.float64)
    theta = np.empty((n, segments))
    theta[:, 0] = directions
    for k in range(1, segments):
        theta[:, k] = theta[:, k - 1] + bend + rng.normal(0, curl * 0.5, n)
        if gravity:
            # turn a fraction of the way towards straight down (pi/2 in image coordinates)
            diff = (math.pi / 2 - theta[:, k] + math.pi) % (2 * math.pi) - math.pi
            theta[:, k] += gravity * diff
    steps = np.stack([np.cos(theta), np.sin(theta)], axis=2) * step[:, None, None]
    pts = np.concatenate([starts[:, None, :], starts[:, None, :] + np.cumsum(steps, axis=1)], axis=1)
    groups = np.sort(rng.uniform(intensity[0], intensity[1], 4))
    which = rng.integers(0, 4, n)
    for g, value in enumerate(groups):
        sel = pts[which == g]
        if len(sel):
            cv2.polylines(canvas, list(_pts(sel)), False, int(255 * value), 1, cv2.LINE_AA, shift=4)
    return canvas


def _contour_points(mask, rng, count):
    """`count` random points on the outline of a binary uint8 mask (empty if none)."""
    contours, _ = cv2.findContours((mask > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return np.zeros((0, 2))
    pts = np.concatenate([c[:, 0, :] for c in contours]).astype(np.float64)
    return pts[rng.integers(0, len(pts), count)] + rng.uniform(-0.5, 0.5, (count, 2))


# --------------------------------------------------------------------------------------
# Textures: functions of the box size (h, w) so layers only texture the pixels they cover
# --------------------------------------------------------------------------------------

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
        _strands(rng, lines, starts, dirs, (0.05 * h, 0.3 * h), curl=curl, intensity=(0.3, 1.0))
        light += np.float32(sign * amount / 255) * lines
    return np.clip(_colorize(light, color) + _c3(0.03 * np.clip(sheen, 0, None)), 0, 1)


# --------------------------------------------------------------------------------------
# Backgrounds
# --------------------------------------------------------------------------------------

def _paint(rng, h, w, color, grain=0.03):
    """Painted-wall like surface (h, w, 3): colour with low-frequency unevenness."""
    return _colorize(1.0 + grain * fractal_noise(rng, h, w, base=2, octaves=4, persistence=0.6), color)


def _floor_texture(rng, size):
    """Square floor texture (size, size, 3) seen from above: planks, tiles or carpet."""
    kind = rng.choice(['planks', 'tiles', 'carpet'])
    s = size
    if kind == 'planks':
        wood = _hsv(rng.uniform(18, 38), rng.uniform(0.35, 0.7), rng.uniform(0.25, 0.75))
        grain = cv2.resize(rng.standard_normal((s // 16, 8), dtype=np.float32), (s, s), interpolation=cv2.INTER_CUBIC)
        n_planks = int(rng.integers(6, 14))
        plank_id = np.arange(s) * n_planks // s
        shade = rng.uniform(0.8, 1.15, n_planks).astype(np.float32)[plank_id][None, :]
        light = shade * (1 + 0.08 * grain)
        light[:, (np.arange(s) * n_planks % s) < n_planks] *= 0.55  # gaps between planks
        return _colorize(light, wood)
    if kind == 'tiles':
        c1 = _random_color(rng, sat=(0, 0.3), val=(0.5, 0.95))
        light = 1 + 0.05 * fractal_noise(rng, s, s, base=8, octaves=2)
        n = int(rng.integers(5, 12))
        for i in range(1, n):
            light[i * s // n, :] *= 0.6
            light[:, i * s // n] *= 0.6
        return _colorize(light, c1)
    c1 = _random_color(rng, sat=(0, 0.5), val=(0.2, 0.7))
    return _colorize(1 + 0.12 * fractal_noise(rng, s, s, base=32, octaves=2), c1)


def _warp_onto(dst, texture, quad):
    """Paste `texture` onto the quadrilateral `quad` (4 points, clockwise from its top-left)."""
    h, w = dst.shape[:2]
    th, tw = texture.shape[:2]
    src = np.float32([[0, 0], [tw - 1, 0], [tw - 1, th - 1], [0, th - 1]])
    quad = np.float32(quad)
    # Warp only the part of the frame the quad covers.
    x0, y0 = [int(max(0, math.floor(v))) for v in quad.min(axis=0)]
    x1, y1 = [int(min(lim, math.ceil(v) + 1)) for v, lim in zip(quad.max(axis=0), (w, h))]
    if x1 <= x0 or y1 <= y0:
        return
    m = cv2.getPerspectiveTransform(src, quad - np.float32([x0, y0]))
    warped = cv2.warpPerspective(texture, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    _fill_poly(mask, quad - np.float32([x0, y0]))
    sub = dst[y0:y1, x0:x1]
    cv2.copyTo(warped, mask, sub)


def _wall_item(rng, sub):
    """Paint a window, picture, door or bookshelf into the (h, w, 3) view `sub` in place."""
    sh, sw = sub.shape[:2]
    kind = rng.choice(['window', 'picture', 'door', 'shelf'])
    t = max(1, int(0.05 * min(sh, sw)))
    if kind == 'window':
        sky = np.linspace(rng.uniform(0.85, 1.0), rng.uniform(0.6, 0.9), sh, dtype=np.float32)
        sub[:] = _colorize(np.repeat(sky[:, None], sw, axis=1), np.array([0.85, 0.92, 1.0], np.float32))
        frame = _random_color(rng, (0, 0.2), (0.6, 0.95))
        for sl in (np.s_[:, sw // 2 - t // 2: sw // 2 + t // 2 + 1], np.s_[sh // 2 - t // 2: sh // 2 + t // 2 + 1],
                   np.s_[:t], np.s_[-t:], np.s_[:, :t], np.s_[:, -t:]):
            sub[sl] = frame
    elif kind == 'picture':
        sub[:] = _random_color(rng, (0, 0.5), (0.1, 0.5))
        if sh > 2 * t and sw > 2 * t:
            art = fractal_noise(rng, sh - 2 * t, sw - 2 * t, channels=3, base=3, octaves=3)
            sub[t:sh - t, t:sw - t] = np.clip(0.5 + 0.25 * art, 0, 1)
    elif kind == 'door':
        sub[:] = _random_color(rng, (0.1, 0.6), (0.2, 0.8))
        sub[:, :t] *= 0.7
        sub[:, -t:] *= 0.7
    else:
        sub[:] = _hsv(rng.uniform(15, 40), 0.5, rng.uniform(0.2, 0.6))
        x = 0
        while x < sw - 1:  # books of random widths, heights and colours
            bw = int(rng.integers(2, max(3, sw // 8)))
            sub[int(rng.uniform(0.1, 0.4) * sh):, x:x + bw] = _random_color(rng, (0.3, 0.9), (0.2, 0.9))
            x += bw + 1


def _clutter(rng, img, count, y_range=(0.0, 1.0)):
    """Draw `count` sharp textured objects (boxes, bottles, lamps, plants...) into img in place.

    Real backgrounds are full of high-contrast edges; a plate that is slightly misaligned
    or re-exposed differs from the shot exactly there, which the model must not mistake
    for foreground. Each object first darkens the surface below it (a soft contact shadow).
    """
    h, w = img.shape[:2]
    for _ in range(count):
        size = rng.uniform(0.03, 0.2) * min(h, w)
        # Work on a local canvas around the object: cheap, whatever the frame size.
        n = int(2.4 * size) + 8
        x0, y0 = int(rng.uniform(0, w) - n / 2), int(rng.uniform(*y_range) * h - 0.8 * n)
        cx, cy = n / 2, 0.8 * n
        m = np.zeros((n, n), np.uint8)
        kind = rng.integers(3)
        if kind == 0:  # box / book / frame
            bw, bh = size * rng.uniform(0.4, 1.5), size * rng.uniform(0.4, 1.5)
            _fill_poly(m, _rotate_points([(cx - bw / 2, cy - bh), (cx + bw / 2, cy - bh), (cx + bw / 2, cy),
                                          (cx - bw / 2, cy)], (cx, cy), rng.uniform(-6, 6)))
        elif kind == 1:  # bottle / vase / lamp: a body with a neck
            _ellipse(m, (cx, cy - size * 0.4), (size * rng.uniform(0.15, 0.4), size * 0.4), 0)
            cv2.rectangle(m, (int(cx - size * 0.07), int(cy - size * 1.1)), (int(cx + size * 0.07), int(cy - size * 0.5)),
                          255, -1)
        else:  # irregular: cushion, bag, rock
            k = int(rng.integers(5, 9))
            ang = np.sort(rng.uniform(0, 2 * math.pi, k))
            rad = size * rng.uniform(0.3, 0.6, k)
            _fill_poly(m, np.stack([cx + rad * np.cos(ang), cy - size * 0.5 + rad * np.sin(ang)], 1))
        alpha = _soft_alpha(m, rng.uniform(0.5, 2.0), rng.uniform(0.6, 1.2))
        shadow = cv2.GaussianBlur(np.roll(alpha, int(size * 0.08) + 1, axis=0), (0, 0), max(0.5, size * 0.08))
        # Clip the local canvas to the frame.
        ly0, lx0 = max(0, -y0), max(0, -x0)
        ly1, lx1 = min(n, h - y0), min(n, w - x0)
        if ly1 <= ly0 or lx1 <= lx0:
            continue
        local = (slice(ly0, ly1), slice(lx0, lx1))
        frame = (slice(y0 + ly0, y0 + ly1), slice(x0 + lx0, x0 + lx1))
        target = img[frame]
        target *= _c3(1.0 - rng.uniform(0.2, 0.5) * shadow[local])
        shading = np.linspace(1.1, 0.7, n, dtype=np.float32)[:, None] * np.ones((1, n), np.float32)
        tex = _fabric(rng, size * 4)((slice(0, n), slice(0, n))) * _c3(shading)
        _over(target, alpha[local], lambda b: tex[local][b])


def _room(rng, h, w):
    """An interior: back wall, side walls, floor and ceiling in one-point perspective,
    things on the wall, furniture, soft shadows in the corners."""
    vp = np.array([rng.uniform(0.25, 0.75) * w, rng.uniform(0.25, 0.55) * h])
    x0, x1 = vp[0] - rng.uniform(0.12, 0.4) * w, vp[0] + rng.uniform(0.12, 0.4) * w
    y0, y1 = vp[1] - rng.uniform(0.12, 0.35) * h, vp[1] + rng.uniform(0.1, 0.3) * h
    tl, tr, br, bl = np.array([x0, y0]), np.array([x1, y0]), np.array([x1, y1]), np.array([x0, y1])

    def far(p):  # continue the ray from the vanishing point through p well past the frame
        return vp + 4.0 * (p - vp)

    wall = _random_color(rng, sat=(0.0, 0.35), val=(0.45, 0.95))
    side = wall * rng.uniform(0.75, 0.95) if rng.random() < 0.7 else _random_color(rng, (0, 0.4), (0.4, 0.9))
    img = _paint(rng, h, w, wall)
    lit = rng.uniform(0.7, 1.0, 2)  # the two side walls face the light differently
    _fill_poly(img, [far(tl), tl, bl, far(bl)], (side * lit[0]).tolist())
    _fill_poly(img, [tr, far(tr), far(br), br], (side * lit[1]).tolist())
    _fill_poly(img, [far(tl), far(tr), tr, tl], _random_color(rng, sat=(0.0, 0.1), val=(0.75, 0.98)).tolist())
    _warp_onto(img, _floor_texture(rng, 256), [bl, br, far(br), far(bl)])
    for _ in range(int(rng.integers(0, 4))):
        cw, ch = rng.uniform(0.1, 0.35) * (x1 - x0), rng.uniform(0.15, 0.5) * (y1 - y0)
        cx = rng.uniform(x0 + cw / 2, max(x0 + cw / 2 + 1, x1 - cw / 2))
        cy = rng.uniform(y0 + ch / 2, max(y0 + ch / 2 + 1, y1 - ch / 2))
        r0, r1 = int(np.clip(cy - ch / 2, 0, h)), int(np.clip(cy + ch / 2, 0, h))
        c0, c1 = int(np.clip(cx - cw / 2, 0, w)), int(np.clip(cx + cw / 2, 0, w))
        if r1 - r0 >= 4 and c1 - c0 >= 4:
            _wall_item(rng, img[r0:r1, c0:c1])
    # Furniture near the bottom (sofa, table, cabinet): a shaded rounded box.
    for _ in range(int(rng.integers(0, 3))):
        fw, fh = rng.uniform(0.15, 0.5) * w, rng.uniform(0.08, 0.3) * h
        fx, fy = rng.uniform(-0.1, 1.0) * w, rng.uniform(max(vp[1], y1 - 0.1 * h), h)
        m = np.zeros((h, w), np.uint8)
        cv2.rectangle(m, (int(fx), int(fy - fh)), (int(fx + fw), int(fy)), 255, -1)
        col = _random_color(rng, (0, 0.7), (0.1, 0.8))

        def furniture(box, col=col):
            bh, bw = box[0].stop - box[0].start, box[1].stop - box[1].start
            light = np.linspace(1.1, 0.75, bh, dtype=np.float32)[:, None] * (
                1 + 0.05 * fractal_noise(rng, bh, bw, base=12, octaves=2))
            return _colorize(light, col)
        _over(img, _soft_alpha(m, 0.01 * min(h, w), 1.0), furniture)
    # Soft dark bands where planes meet (ambient occlusion).
    ao = np.zeros((h, w), np.uint8)
    lw = max(1, int(0.02 * w))
    for p in (tl, tr, br, bl):
        cv2.line(ao, tuple(int(v) for v in p), tuple(int(v) for v in far(p)), 255, lw)
    cv2.rectangle(ao, (int(x0), int(y0)), (int(x1), int(y1)), 255, lw)
    small = cv2.resize(ao, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    ao = cv2.resize(cv2.GaussianBlur(small, (0, 0), max(0.5, 0.005 * w)), (w, h), interpolation=cv2.INTER_LINEAR)
    img = img * _c3(1 - 0.25 * ao)
    _clutter(rng, img, int(rng.integers(0, 7)), (max(0.0, y1 / h - 0.1), 1.0))
    return img


def _outdoor(rng, h, w):
    """Sky with clouds above a horizon, buildings or trees, and textured ground."""
    horizon = rng.uniform(0.3, 0.7)
    hy = max(1, min(h - 1, int(horizon * h)))
    mood = rng.choice(['clear', 'overcast', 'dusk'])
    if mood == 'clear':
        top, bottom = np.array([0.25, 0.45, 0.85]), np.array([0.75, 0.85, 0.95])
    elif mood == 'overcast':
        g = rng.uniform(0.6, 0.9)
        top, bottom = np.array([g, g, g + 0.03]), np.array([g + 0.05] * 3)
    else:
        top, bottom = np.array([0.2, 0.25, 0.5]), np.array([0.95, 0.6, 0.35])
    t = np.linspace(0, 1, hy, dtype=np.float32)[:, None]
    clouds = np.clip(fractal_noise(rng, hy, w, base=3, octaves=5) - rng.uniform(0, 1.2), 0, None) * 0.35
    img = np.empty((h, w, 3), np.float32)
    img[:hy] = _colorize(1 - t + clouds, top) + _colorize(t + clouds, bottom)
    ground = _random_color(rng, sat=(0.2, 0.6), val=(0.2, 0.6)) if rng.random() < 0.5 else \
        _hsv(rng.uniform(70, 140), rng.uniform(0.3, 0.7), rng.uniform(0.2, 0.5))
    depth = np.linspace(0.8, 1.1, h - hy, dtype=np.float32)[:, None]  # nearer ground is brighter
    img[hy:] = _colorize(depth * (1 + 0.15 * fractal_noise(rng, h - hy, w, base=16, octaves=3)), ground)
    if rng.random() < 0.5:  # skyline: buildings with window grids
        x = int(rng.uniform(-0.1, 0) * w)
        while x < w:
            bw = int(rng.uniform(0.08, 0.25) * w) + 1
            top_y = max(0, int(hy - rng.uniform(0.05, 0.45) * h))
            x0, x1 = max(0, x), min(w, x + bw)
            if x1 > x0 and top_y < hy:
                col = _random_color(rng, (0, 0.3), (0.3, 0.85))
                block = img[top_y:hy + 1, x0:x1]
                block[:] = col
                wy, wx = np.mgrid[0:block.shape[0], 0:block.shape[1]]
                block[((wy % 9) < 5) & ((wx % 7) < 4) & (wy > 3)] = col * 0.55 + np.float32(0.06)
            x += bw + int(rng.uniform(0, 0.05) * w)
    else:  # tree line: leafy blobs with irregular edges
        trees = np.zeros((h, w), np.uint8)
        for _ in range(int(rng.integers(3, 10))):
            r = rng.uniform(0.05, 0.2) * h
            _ellipse(trees, (rng.uniform(0, w), hy - r * 0.6), (r, r * 1.2), 0)
        leaf = _hsv(rng.uniform(70, 140), rng.uniform(0.3, 0.8), rng.uniform(0.15, 0.5))
        def edge_noise(bh, bw):
            return fractal_noise(rng, bh, bw, base=24, octaves=2)

        def foliage(box):
            bh, bw = box[0].stop - box[0].start, box[1].stop - box[1].start
            return _colorize(1 + 0.3 * fractal_noise(rng, bh, bw, base=40, octaves=2), leaf)
        _over(img, _soft_alpha(trees, 0.01 * h, 1.5, edge_noise, 0.3), foliage)
    _clutter(rng, img, int(rng.integers(0, 4)), (horizon + 0.05, 1.0))  # benches, bins, cars, rocks
    return img


def _studio(rng, h, w):
    """Backdrop with a radial light falloff, out-of-focus shapes and bokeh discs."""
    # Everything but the bokeh ends up blurred: draw it at quarter size, upsample once.
    f = 4
    sh, sw = max(2, h // f), max(2, w // f)
    yy, xx = np.ogrid[0:sh, 0:sw]
    c = (rng.uniform(0.2, 0.8) * sw, rng.uniform(0.1, 0.6) * sh)
    r = np.sqrt(((xx - c[0]) ** 2 + (yy - c[1]) ** 2).astype(np.float32)) / max(sh, sw)
    t = np.clip(r * rng.uniform(0.8, 2.0), 0, 1)
    img = _colorize(1 - t, _random_color(rng, (0, 0.6), (0.5, 1.0))) + _colorize(t, _random_color(rng, (0, 0.6), (0.05, 0.5)))
    for _ in range(int(rng.integers(2, 8))):
        col = (img[int(rng.uniform(0, sh)), int(rng.uniform(0, sw))] * 0.4 + _random_color(rng) * 0.6).tolist()
        if rng.random() < 0.5:
            cv2.rectangle(img, (int(rng.uniform(0, sw)), int(rng.uniform(0, sh))),
                          (int(rng.uniform(0, sw)), int(rng.uniform(0, sh))), col, -1)
        else:
            _ellipse(img, (rng.uniform(0, sw), rng.uniform(0, sh)),
                     (rng.uniform(0.03, 0.3) * sw, rng.uniform(0.03, 0.3) * sh), rng.uniform(0, 180), col)
    img = cv2.GaussianBlur(img, (0, 0), max(0.5, rng.uniform(0.005, 0.03) * max(sh, sw)))
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    # Bokeh: out-of-focus point lights are bright discs, sharp-edged at full size.
    for _ in range(int(rng.integers(0, 25))):
        rad = rng.uniform(0.01, 0.05) * max(h, w)
        col = (_random_color(rng, (0.2, 0.8), (0.5, 1.0)) * rng.uniform(0.2, 0.6)).astype(np.float32)
        disc = np.zeros((h, w), np.float32)
        _ellipse(disc, (rng.uniform(0, w), rng.uniform(0, h)), (rad, rad), 0, 1.0, line=cv2.LINE_AA)
        _over(img, disc, lambda box, col=col: img[box] + col)  # light adds up
    return img


def _background(rng, h, w):
    """A background plate (h, w, 3): a room, an outdoor view or a studio backdrop."""
    kind = rng.choice(['room', 'room', 'outdoor', 'studio'])
    img = {'room': _room, 'outdoor': _outdoor, 'studio': _studio}[kind](rng, h, w)
    # Uneven illumination, as every real room has (smooth: built at 1/8 size), and fine grain.
    sh, sw = max(2, h // 8), max(2, w // 8)
    light = 1.0 + rng.uniform(0.1, 0.35) * fractal_noise(rng, sh, sw, base=2, octaves=2)
    light = cv2.resize(light, (w, h), interpolation=cv2.INTER_LINEAR)
    img = img * _c3(light + rng.uniform(0.005, 0.02) * _normal(rng, h, w))
    if rng.random() < 0.5:  # depth of field: the background is often out of focus
        sigma = rng.uniform(0.5, 0.004 * max(h, w) + 0.6)
        if sigma > 2.0:  # wide blur: half size is indistinguishable and 4x cheaper
            small = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
            img = cv2.resize(cv2.GaussianBlur(small, (0, 0), sigma / 2), (w, h), interpolation=cv2.INTER_LINEAR)
        else:
            img = cv2.GaussianBlur(img, (0, 0), sigma)
    return np.clip(img, 0, 1).astype(np.float32)


# --------------------------------------------------------------------------------------
# Foregrounds
# --------------------------------------------------------------------------------------

class _Layers:
    """Back-to-front stack of (colour, alpha) layers composited with 'over'.

    Kept premultiplied, so semi-transparent layers over each other give the physically
    right colour and alpha. Only the bounding box of each new layer is touched.
    """

    def __init__(self, h, w):
        self.premul = np.zeros((h, w, 3), np.float32)
        self.alpha = np.zeros((h, w), np.float32)

    def add(self, alpha, color):
        """color: RGB triple, or fn(box) -> (box_h, box_w, 3) texture for the layer's bounding box."""
        box = _bbox(alpha)
        if box is None:
            return
        a = alpha[box]
        bh, bw = a.shape
        col = color(box) if callable(color) else np.broadcast_to(np.asarray(color, np.float32), (bh, bw, 3))
        a3 = _c3(a)
        self.premul[box] = col * a3 + self.premul[box] * (1.0 - a3)
        self.alpha[box] = a + self.alpha[box] * (1.0 - a)

    def result(self):
        """(pha (h,w), fgr (h,w,3)); fgr = premultiplied / alpha where alpha > 0.

        Where alpha is 0 the colour is undefined; it is filled by spreading nearby
        foreground colour outwards (normalised blurs at 1/8 size, a narrow one blended into
        a wide one), like the colour-extended foregrounds of real matting datasets, so that
        later blurs do not drag black into the edges.
        """
        h, w = self.alpha.shape
        a = self.alpha
        sw, sh = max(1, w // 8), max(1, h // 8)
        sp = cv2.resize(self.premul, (sw, sh), interpolation=cv2.INTER_AREA)
        sa = cv2.resize(a, (sw, sh), interpolation=cv2.INTER_AREA)
        mean = np.float32(cv2.sumElems(sp)[:3]) / max(float(sa.sum()), 1e-4)
        fill = np.broadcast_to(mean, sp.shape).astype(np.float32)
        for sigma in (0.15 * max(sw, sh), 1.0):  # wide first, then sharpen near the subject
            bp = cv2.GaussianBlur(sp, (0, 0), sigma)
            ba = cv2.GaussianBlur(sa, (0, 0), sigma)
            weight = _c3(np.clip(ba * 20.0, 0, 1))
            fill = weight * bp / _c3(np.maximum(ba, 1e-6)) + (1 - weight) * fill
        fill = cv2.resize(np.clip(fill, 0, 1).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        # (premul + e * fill) / (a + e): premul / a wherever alpha is visible (relative error
        # below 0.3 % even at alpha = 1/255), exactly `fill` where alpha is 0; one pass over
        # the subject's bounding box.
        box = _bbox(a)
        if box is not None:
            eps = np.float32(1e-5)
            fill[box] = np.clip((self.premul[box] + eps * fill[box]) / _c3(a[box] + eps), 0, 1)
        return a, fill


def _shade(rng, solid, unit):
    """Fake 3-D shading from a silhouette: the blurred mask is a height field lit by a lamp.

    Returns a multiplicative (h, w) shading field (ambient + Lambert diffuse).
    """
    h, w = solid.shape
    f = 4
    small = cv2.resize(solid, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    height = cv2.GaussianBlur(small, (0, 0), max(1.0, 0.05 * unit / f))
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3)
    k = rng.uniform(4, 10)
    az, el = rng.uniform(0, 2 * math.pi), rng.uniform(0.3, 1.2)
    lx, ly, lz = math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)
    lam = np.clip((-gx * k * lx - gy * k * ly + lz) / np.sqrt((gx * k) ** 2 + (gy * k) ** 2 + 1), 0, 1)
    ambient = rng.uniform(0.35, 0.6)
    shade = ambient + (1 - ambient) * lam / max(lz, 0.3)
    shade = cv2.resize(shade.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(shade, 0.3, 1.4)


def _person(rng, h, w, layers, bgr, scale=1.0, cx=None):
    """Add a head-and-shoulders person (maybe with arms, long hair, accessories) to `layers`.

    scale multiplies the person's size; cx (pixels) fixes the horizontal position, which is
    otherwise mostly central and sometimes at the frame edge (someone partly out of frame).
    Returns (solid mask uint8 for shading, size unit in pixels).
    """
    unit = h * rng.uniform(0.55, 1.1) * scale
    if cx is None:
        edge = rng.random() < 0.15
        cx = w * (rng.choice([rng.uniform(-0.05, 0.2), rng.uniform(0.8, 1.05)]) if edge else rng.uniform(0.25, 0.75))
    head_ry = 0.13 * unit
    head_rx = head_ry * rng.uniform(0.72, 0.85)
    hy = h * rng.uniform(0.05, 0.3) + head_ry
    tilt, head_tilt = rng.uniform(-8, 8), rng.uniform(-12, 12)
    sh_y = hy + head_ry + rng.uniform(0.04, 0.09) * unit
    sw = rng.uniform(0.22, 0.33) * unit
    center = np.array([cx, sh_y])

    # Clothes: torso down past the frame (people are usually cut off at the bottom) and arms.
    body = np.zeros((h, w), np.uint8)
    torso = [(cx - 0.1 * unit, sh_y - 0.02 * unit), (cx - sw, sh_y + 0.06 * unit), (cx - sw * 1.05, sh_y + 0.3 * unit),
             (cx - sw * rng.uniform(0.85, 1.1), h + 0.2 * unit), (cx + sw * rng.uniform(0.85, 1.1), h + 0.2 * unit),
             (cx + sw * 1.05, sh_y + 0.3 * unit), (cx + sw, sh_y + 0.06 * unit), (cx + 0.1 * unit, sh_y - 0.02 * unit)]
    _fill_poly(body, _rotate_points(torso, center, tilt))
    hands = []
    if rng.random() < 0.5:
        for side in (-1, 1):
            if rng.random() < 0.7:
                shoulder = np.array([cx + side * sw * 0.92, sh_y + 0.09 * unit])
                elbow = shoulder + np.array([side * rng.uniform(0.0, 0.12), rng.uniform(0.2, 0.35)]) * unit
                hand = elbow + np.array([rng.uniform(-0.3, 0.3) * unit, rng.uniform(-0.45, 0.1) * unit])
                pts = _rotate_points([shoulder, elbow, hand], center, tilt)
                _capsule(body, pts[:2], 0.11 * unit)
                _capsule(body, pts[1:], 0.09 * unit)
                hands.append(pts[2])
    clothes_alpha = _soft_alpha(body, 0.02 * unit, rng.uniform(0.6, 1.8))
    cloth_color = None
    if rng.random() < 0.15:  # clothes the colour of the wall behind: a classic hard case
        cloth_color = bgr[int(min(h - 1, sh_y + 0.2 * unit)), int(min(w - 1, cx))] * rng.uniform(0.9, 1.1)
    if rng.random() < 0.15:  # fluffy knit: a fringe of short fibres
        fibres = np.zeros((h, w), np.uint8)
        starts = _contour_points(body, rng, int(rng.integers(200, 800)))
        _strands(rng, fibres, starts, rng.uniform(0, 2 * math.pi, len(starts)), (0.005 * unit, 0.02 * unit),
                 curl=0.3, intensity=(0.2, 0.7))
        clothes_alpha = np.maximum(clothes_alpha, fibres.astype(np.float32) / 255)
    layers.add(clothes_alpha, _fabric(rng, unit, cloth_color))

    # Skin: neck, head with ears, hands; a face unless seen from behind.
    skin_mask = np.zeros((h, w), np.uint8)
    neck = [(cx - 0.055 * unit, hy), (cx + 0.055 * unit, hy), (cx + 0.06 * unit, sh_y + 0.03 * unit),
            (cx - 0.06 * unit, sh_y + 0.03 * unit)]
    if rng.random() < 0.5:  # a V or round neckline shows skin below the neck
        depth = rng.uniform(0.03, 0.14) * unit
        neck = neck[:2] + [(cx + 0.08 * unit, sh_y), (cx, sh_y + depth), (cx - 0.08 * unit, sh_y)]
    _fill_poly(skin_mask, _rotate_points(neck, center, tilt))
    head_c = _rotate_points([(cx, hy)], center, tilt)[0]
    angle = tilt + head_tilt
    _ellipse(skin_mask, head_c, (head_rx, head_ry), angle)
    for side in (-1, 1):
        ear = _rotate_points([head_c + [side * head_rx, 0.1 * head_ry]], head_c, angle)[0]
        _ellipse(skin_mask, ear, (0.15 * head_rx, 0.25 * head_ry), angle)
    for hand in hands:
        _ellipse(skin_mask, hand, (0.05 * unit, 0.065 * unit), rng.uniform(0, 180))
    tone = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] * rng.uniform(0.92, 1.08, 3).astype(np.float32)
    back_view = rng.random() < 0.15
    face_seed = rng.integers(2 ** 63)

    def skin(box):
        r = np.random.default_rng(face_seed)
        img = _skin(r, box[0].stop - box[0].start, box[1].stop - box[1].start, tone)
        if not back_view:
            _face(r, img, head_c - [box[1].start, box[0].start], head_rx, head_ry, angle, tone)
        return img
    layers.add(_soft_alpha(skin_mask, 0.01 * unit, rng.uniform(0.6, 1.5)), skin)
    solid = np.maximum(body, skin_mask)

    # Hair: a mass over the top of the head (all of it seen from behind), maybe long hair
    # to the shoulders, a wispy noisy edge and strands in locks.
    if back_view or rng.random() < 0.9:
        style = rng.choice(['straight', 'wavy', 'curly'], p=[0.45, 0.35, 0.2])
        volume = rng.uniform(1.05, 1.25) if style != 'curly' else rng.uniform(1.25, 1.6)
        hair_mask = np.zeros((h, w), np.uint8)
        _ellipse(hair_mask, head_c - [0, 0.06 * head_ry * volume],
                 (head_rx * volume, head_ry * rng.uniform(1.0, 1.12) * min(volume, 1.3)), angle)
        if not back_view:  # cut out the face below a hairline (bangs hang a bit lower)
            face = np.zeros((h, w), np.uint8)
            fy = head_c[1] - rng.uniform(0.2, 0.55) * head_ry
            _ellipse(face, (head_c[0], fy + head_ry * 0.9), (head_rx * 0.85, head_ry * 1.0), angle)
            hair_mask[face > 0] = 0
        long_hair = rng.random() < 0.4
        if long_hair:
            length = rng.uniform(0.2, 0.6) * unit
            for side in (-1, 1):
                x_in = head_c[0] + side * head_rx * 0.75
                x_out = head_c[0] + side * head_rx * rng.uniform(1.1, 1.5) * volume
                _fill_poly(hair_mask, [(x_in, head_c[1] - 0.3 * head_ry), (x_out, head_c[1]),
                                       (x_out + side * rng.uniform(-0.02, 0.06) * unit, head_c[1] + length),
                                       (x_in, head_c[1] + length * rng.uniform(0.8, 1.0))])

        def noise(bh, bw):  # fine noise at a fixed pixel scale (~12 px cells)
            return fractal_noise(rng, bh, bw, base=max(2, int(max(bh, bw) / 12)), octaves=2)
        fuzz = rng.uniform(0.1, 0.3) if style != 'curly' else rng.uniform(0.3, 0.5)
        hair_alpha = _soft_alpha(hair_mask, 0.01 * unit, rng.uniform(1.5, 4.0), noise, fuzz)
        # Locks: a few strands start close together, leave in one direction and bend alike.
        per_lock = int(rng.integers(2, 7))
        locks = max(1, int(rng.integers(20, 120) * max(1.0, unit / 400)))
        starts = _contour_points(hair_mask, rng, locks)
        if len(starts):
            out = starts - head_c
            out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-6
            down = 0.8 if long_hair else 0.3  # hair falls: tilt the outward direction down
            dirs = np.arctan2(out[:, 1] + down, out[:, 0]) + rng.normal(0, 0.35, len(starts))
            curl = {'straight': 0.06, 'wavy': 0.15, 'curly': 0.45}[style]
            bend = rng.normal(0, curl, len(starts))
            starts = np.repeat(starts, per_lock, 0) + rng.normal(0, 0.004 * unit + 0.5, (len(starts) * per_lock, 2))
            dirs = np.repeat(dirs, per_lock) + rng.normal(0, 0.12, len(starts))
            bend = np.repeat(bend, per_lock) + rng.normal(0, curl * 0.3, len(starts))
            longest = rng.uniform(0.05, 0.18) * unit if style != 'curly' else rng.uniform(0.03, 0.08) * unit
            strands = np.zeros((h, w), np.uint8)
            _strands(rng, strands, starts, dirs, (0.01 * unit, longest), curl=curl,
                     gravity=0.2 if long_hair else 0.06, intensity=(0.15, 0.85), bend=bend,
                     segments=12 if style == 'curly' else 8)
            hair_alpha = np.maximum(hair_alpha, strands.astype(np.float32) / 255)
        color = np.clip(_HAIR_COLORS[rng.integers(len(_HAIR_COLORS))] * rng.uniform(0.97, 1.03, 3) * rng.uniform(0.85, 1.15), 0, 1)
        hair_seed = rng.integers(2 ** 63)
        hair_curl = {'straight': 0.03, 'wavy': 0.1, 'curly': 0.35}[style]
        layers.add(hair_alpha, lambda box: _hair_texture(np.random.default_rng(hair_seed), box[0].stop - box[0].start,
                                                          box[1].stop - box[1].start, color.astype(np.float32),
                                                          hair_curl))
        solid = np.maximum(solid, hair_mask)

    # Accessories: glasses, a veil/scarf, a glass in hand.
    if not back_view and rng.random() < 0.2:
        _glasses(rng, layers, head_c, head_rx, head_ry, angle)
    if rng.random() < 0.12:
        _veil(rng, layers, head_c, head_rx, head_ry, unit, sh_y)
    if rng.random() < 0.15:
        pos = hands[0] if hands else np.array([cx + rng.choice([-1, 1]) * sw * rng.uniform(0.9, 1.4),
                                               sh_y + rng.uniform(0.2, 0.6) * unit])
        _glass_object(rng, layers, pos, unit)
    return solid, unit


def _face(rng, skin, c, rx, ry, angle, tone):
    """Paint simple facial features (brows, eyes, nose shadow, mouth) into the skin image."""
    def at(dx, dy):
        return _rotate_points([(c[0] + dx * rx, c[1] + dy * ry)], c, angle)[0]
    iris = (float(rng.uniform(0.05, 0.3)),) * 3
    for side in (-1, 1):
        e = at(side * 0.38, -0.05)
        _ellipse(skin, e, (0.16 * rx, 0.07 * ry), angle, (0.9, 0.88, 0.85), line=cv2.LINE_AA)
        _ellipse(skin, e, (0.07 * rx, 0.06 * ry), angle, iris, line=cv2.LINE_AA)
        b0, b1 = at(side * 0.2, -0.22), at(side * 0.55, -0.2)
        cv2.line(skin, tuple(int(v) for v in _pts(b0)), tuple(int(v) for v in _pts(b1)), (tone * 0.4).tolist(),
                 max(1, int(0.05 * ry)), cv2.LINE_AA, shift=4)
    _ellipse(skin, at(0, 0.3), (0.1 * rx, 0.05 * ry), angle, (tone * 0.8).tolist(), line=cv2.LINE_AA)
    _ellipse(skin, at(0, 0.55), (0.3 * rx, 0.06 * ry), angle, (tone * np.array([0.8, 0.45, 0.45])).tolist(),
             line=cv2.LINE_AA)


def _glasses(rng, layers, c, rx, ry, angle):
    """Spectacles: faint tinted lenses with opaque rims (partial alpha inside the face)."""
    h, w = layers.alpha.shape
    lens, rim = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
    for side in (-1, 1):
        e = _rotate_points([(c[0] + side * 0.4 * rx, c[1] - 0.03 * ry)], c, angle)[0]
        _ellipse(lens, e, (0.3 * rx, 0.18 * ry), angle)
        _ellipse(rim, e, (0.3 * rx, 0.18 * ry), angle, thickness=max(1, int(0.03 * rx)), line=cv2.LINE_AA)
    alpha = np.maximum(lens.astype(np.float32) / 255 * rng.uniform(0.05, 0.35), rim.astype(np.float32) / 255)
    layers.add(alpha, _random_color(rng, (0, 0.5), (0.05, 0.6)))


def _veil(rng, layers, c, rx, ry, unit, neck_y):
    """Sheer fabric: a veil over the head falling to the shoulders, or a scarf hanging from
    the neck. Partial alpha (often with lace holes) over both the body and the background."""
    h, w = layers.alpha.shape
    m = np.zeros((h, w), np.uint8)
    if rng.random() < 0.5:  # veil
        grow = rng.uniform(1.15, 1.4)
        _ellipse(m, c - [0, 0.1 * ry], (rx * grow, ry * grow), 0)
        length = rng.uniform(0.3, 0.7) * unit
        spread = rng.uniform(0.0, 0.15) * unit
        _fill_poly(m, [(c[0] - rx * grow, c[1]), (c[0] + rx * grow, c[1]),
                       (c[0] + rx * grow + spread, c[1] + length), (c[0] - rx * grow - spread, c[1] + length)])
    else:  # scarf
        side = rng.choice([-1, 1])
        top = np.array([c[0] + side * rx * rng.uniform(0.2, 0.9), neck_y - 0.03 * unit])
        width, length = rng.uniform(0.08, 0.18) * unit, rng.uniform(0.3, 0.8) * unit
        lean = side * rng.uniform(-0.05, 0.2) * unit
        _fill_poly(m, [top - [width / 2, 0], top + [width / 2, 0], top + [width / 2 + lean, length],
                       top + [-width / 2 + lean, length]])
    a = _soft_alpha(m, 0.015 * unit, rng.uniform(1.0, 3.0))
    box = _bbox(a)
    if box is None:
        return
    bh, bw = a[box].shape
    weave = 0.85 + 0.15 * np.clip(fractal_noise(rng, bh, bw, base=8, octaves=3), -1, 1)
    if rng.random() < 0.4:  # lace: a pattern of holes
        weave *= 0.35 + 0.65 * _pattern(rng, bh, bw, unit)
    a[box] *= rng.uniform(0.2, 0.7) * weave
    layers.add(a, _fabric(rng, unit))


def _glass_object(rng, layers, pos, unit):
    """A drinking glass / bottle: faint body, opaque-ish rim, a bright specular streak."""
    h, w = layers.alpha.shape
    gw, gh = rng.uniform(0.06, 0.12) * unit, rng.uniform(0.12, 0.3) * unit
    p0 = (int(pos[0] - gw / 2), int(pos[1] - gh * 0.8))
    p1 = (int(pos[0] + gw / 2), int(pos[1] + gh * 0.2))
    t = max(1, int(0.08 * gw))
    body, rim, streak = (np.zeros((h, w), np.uint8) for _ in range(3))
    cv2.rectangle(body, p0, p1, 255, -1)
    cv2.rectangle(rim, p0, p1, 255, t, cv2.LINE_AA)
    sx = int(p0[0] + gw * rng.uniform(0.2, 0.4))
    cv2.line(streak, (sx, int(p0[1] + 0.1 * gh)), (sx, int(p0[1] + 0.8 * gh)), 255, t, cv2.LINE_AA)
    a = np.maximum(_soft_alpha(body, 1.0, 1.0) * rng.uniform(0.08, 0.3), rim.astype(np.float32) / 255 * 0.8)
    layers.add(a, _random_color(rng, (0, 0.3), (0.6, 1.0)))
    layers.add(streak.astype(np.float32) / 255 * 0.6, (0.97, 0.97, 0.97))


def _objects(rng, h, w, layers):
    """A non-person foreground: a potted plant with leaves and gaps, or a cluster of shapes
    (possibly with a hole). Returns (solid mask uint8, size unit)."""
    unit = min(h, w) * rng.uniform(0.5, 1.0)
    cx, cy = w * rng.uniform(0.25, 0.75), h * rng.uniform(0.4, 0.8)
    mask = np.zeros((h, w), np.uint8)
    if rng.random() < 0.4:
        pot = np.zeros((h, w), np.uint8)
        _fill_poly(pot, [(cx - 0.12 * unit, h * 1.05), (cx - 0.15 * unit, cy + 0.1 * unit),
                         (cx + 0.15 * unit, cy + 0.1 * unit), (cx + 0.12 * unit, h * 1.05)])
        layers.add(_soft_alpha(pot, 0.01 * unit, 1.0), _fabric(rng, unit))
        base = (int(cx), int(cy + 0.1 * unit))
        for _ in range(int(rng.integers(10, 40))):
            a = rng.uniform(-math.pi, 0)
            r = rng.uniform(0.1, 0.5) * unit
            tip = (base[0] + r * math.cos(a), base[1] + r * math.sin(a))
            cv2.line(mask, base, (int(tip[0]), int(tip[1])), 255, max(1, int(0.008 * unit)))
            _ellipse(mask, tip, (rng.uniform(0.03, 0.08) * unit, rng.uniform(0.01, 0.03) * unit),
                     math.degrees(a) + rng.uniform(-30, 30))
        leaf = _hsv(rng.uniform(70, 150), rng.uniform(0.4, 0.9), rng.uniform(0.2, 0.6))

        def leaves(box):
            bh, bw = box[0].stop - box[0].start, box[1].stop - box[1].start
            return np.clip(_colorize(1 + 0.25 * fractal_noise(rng, bh, bw, base=20, octaves=2), leaf), 0, 1)
        layers.add(_soft_alpha(mask, 0.003 * unit, rng.uniform(0.6, 1.5)), leaves)
        return np.maximum(mask, pot), unit
    for _ in range(int(rng.integers(2, 7))):
        p = np.array([cx, cy]) + rng.normal(0, 0.15, 2) * unit
        if rng.random() < 0.5:
            _ellipse(mask, p, rng.uniform(0.05, 0.25, 2) * unit, rng.uniform(0, 180))
        else:
            k = int(rng.integers(3, 8))
            ang = np.sort(rng.uniform(0, 2 * math.pi, k))
            rad = rng.uniform(0.05, 0.25, k) * unit
            _fill_poly(mask, np.stack([p[0] + rad * np.cos(ang), p[1] + rad * np.sin(ang)], 1))
    if rng.random() < 0.3:  # a hole (handle, ring) showing the background through the object
        _ellipse(mask, (cx, cy), rng.uniform(0.03, 0.08, 2) * unit, rng.uniform(0, 180), 0)
    layers.add(_soft_alpha(mask, rng.uniform(0.005, 0.03) * unit, rng.uniform(0.6, 2.0)), _fabric(rng, unit))
    return mask, unit


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
    if r < 0.08:  # motion blur along a random direction
        k = int(rng.integers(3, max(4, int(0.03 * unit))))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2] = 1.0 / k
        rot = cv2.getRotationMatrix2D(((k - 1) / 2, (k - 1) / 2), rng.uniform(0, 180), 1)
        kernel = cv2.warpAffine(kernel, rot, (k, k))
        kernel /= kernel.sum()
        pha, fgr = _blur_premultiplied(pha, fgr, lambda x: cv2.filter2D(x, -1, kernel))
    elif r < 0.16:  # slight defocus of the subject
        s = rng.uniform(0.6, 2.0)
        pha, fgr = _blur_premultiplied(pha, fgr, lambda x: cv2.GaussianBlur(x, (0, 0), s))
    return pha[:, :, None].astype(np.float32), fgr.astype(np.float32), bgr.astype(np.float32)


def _blur_premultiplied(pha, fgr, blur):
    """Blur a foreground the physical way: blur alpha and premultiplied colour, then divide."""
    pre = blur(fgr * _c3(pha))
    a = np.clip(blur(pha), 0, 1)
    inside = a > 1e-3
    fgr = fgr.copy()
    fgr[inside] = pre[inside] / a[inside][:, None]
    return a.astype(np.float32), np.clip(fgr, 0, 1)


# --------------------------------------------------------------------------------------
# Public dataset and writers
# --------------------------------------------------------------------------------------

class SyntheticMattingDataset(paddle.io.Dataset):
    """`length` procedurally generated samples: (pha (1,H,W), fgr (3,H,W), bgr (3,H,W)) float32 in [0, 1].

    size is (H, W). Sample i is a pure function of (seed, i) -- or of (seed, epoch, i) with
    new_samples_each_epoch=True, after set_epoch(epoch), which turns the dataset into an
    endless supply of fresh scenes. Compose src = fgr * pha + bgr * (1 - pha) yourself, or
    use augmentation.augment_batch, which adds shadows, noise and plate differences.
    """

    def __init__(self, length, size=(512, 512), seed=0, new_samples_each_epoch=False):
        super().__init__()
        self.length = int(length)
        self.size = (int(size[0]), int(size[1]))
        self.seed = int(seed)
        self.new_samples_each_epoch = new_samples_each_epoch
        self.epoch = 0

    def set_epoch(self, epoch):
        """Select the samples of epoch `epoch` (only matters with new_samples_each_epoch)."""
        self.epoch = int(epoch)

    def __len__(self):
        return self.length

    def sample_hwc(self, idx):
        """Sample `idx` as HWC arrays: pha (H,W,1), fgr (H,W,3), bgr (H,W,3)."""
        if not 0 <= idx < self.length:
            raise IndexError(f'SyntheticMattingDataset: index {idx} out of range for length {self.length}')
        key = [self.seed, self.epoch, idx] if self.new_samples_each_epoch else [self.seed, idx]
        return synthesize(self.size[0], self.size[1], np.random.default_rng(key))

    def __getitem__(self, idx):
        idx = int(idx)
        if idx < 0:
            idx += self.length
        return tuple(np.ascontiguousarray(x.transpose(2, 0, 1)) for x in self.sample_hwc(idx))

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
