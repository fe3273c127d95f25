"""Procedural backgrounds: rooms in perspective, outdoor scenes, studio backdrops."""
import math

import cv2
import numpy as np

from .drawing import _c3, _colorize, _ellipse, _fill_poly, _hsv, _normal, _over, _random_color, _rotate_points, _soft_alpha, fractal_noise
from .textures import _fabric


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
