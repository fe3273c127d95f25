"""Building blocks of the procedural scenes: noise, colours, soft alpha, shapes and strands."""
import math

import cv2
import numpy as np


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


def draw_strands(rng, canvas, starts, directions, length, curl=0.15, gravity=0.0, intensity=(0.2, 0.9),
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
