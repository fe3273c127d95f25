"""Procedural foregrounds: people (hair, faces, clothes, glasses, veils), objects and plants, as alpha layers."""
import math

import cv2
import numpy as np

from .drawing import _bbox, _c3, _capsule, _colorize, _contour_points, _ellipse, _fill_poly, _hsv, _pts, _random_color, _rotate_points, _soft_alpha, draw_strands, fractal_noise
from .textures import _HAIR_COLORS, _SKIN_TONES, _fabric, _hair_texture, _pattern, _skin


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
        draw_strands(rng, fibres, starts, rng.uniform(0, 2 * math.pi, len(starts)), (0.005 * unit, 0.02 * unit),
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
            draw_strands(rng, strands, starts, dirs, (0.01 * unit, longest), curl=curl,
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
