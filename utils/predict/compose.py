"""Padding, cropping, upsampling and compositing for predict.py.

The network needs inputs whose height and width are multiples of 4; `pad_to_multiple` pads
any image up to that and `crop` takes the outputs back to the input size. Everything here is
plain numpy/OpenCV on float32 arrays in [0, 1]: HWC (RGB) for images, NCHW for network
batches.
"""
import re

import cv2
import numpy as np

# The official inference_video.py composites onto this green when no target is given.
DEFAULT_TARGET_BGR = (120, 255, 155)

OUTPUT_KINDS = ('pha', 'fgr', 'com', 'err', 'ref', 'new')


def pad_to_multiple(batch, multiple=4):
    """Pad an NCHW batch on the bottom and right so that H and W are multiples of `multiple`.

    Edge pixels are replicated rather than zero-filled: source and background get the same
    padding, so the padded band looks like background to the network and does not create an
    artificial edge next to the real image. Returns (padded batch, (H, W) of the input).
    """
    h, w = batch.shape[2:]
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        batch = np.pad(batch, ((0, 0), (0, 0), (0, ph), (0, pw)), mode='edge')
    return batch, (h, w)


def crop(batch, size):
    """Undo `pad_to_multiple`: the top-left (H, W) of an NCHW batch."""
    h, w = size
    return batch[:, :, :h, :w]


def upsample(batch, size, nearest=False):
    """Resize an NCHW batch to `size` (H, W): bilinear (err), or nearest (ref, a 0/1 patch map)."""
    h, w = size
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    out = np.empty(batch.shape[:2] + (h, w), np.float32)
    for i in range(batch.shape[0]):
        for c in range(batch.shape[1]):
            out[i, c] = cv2.resize(batch[i, c], (w, h), interpolation=interpolation)
    return out


def resize_image(img, size):
    """Resize an HWC image to `size` (W, H): area averaging to shrink (no aliasing), bicubic to grow."""
    w, h = size
    if img.shape[1] == w and img.shape[0] == h:
        return img
    shrink = w * h < img.shape[0] * img.shape[1]
    out = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    return np.clip(out, 0.0, 1.0).reshape((h, w) + img.shape[2:])


# Colour names accepted by parse_color: CSS's basic colours, plus the official green backdrop
# and the usual keying colours.
NAMED_COLORS = {
    'black': (0, 0, 0), 'white': (255, 255, 255), 'gray': (128, 128, 128),
    'grey': (128, 128, 128), 'silver': (192, 192, 192), 'red': (255, 0, 0),
    'maroon': (128, 0, 0), 'orange': (255, 165, 0), 'yellow': (255, 255, 0),
    'olive': (128, 128, 0), 'lime': (0, 255, 0), 'green': (0, 128, 0), 'teal': (0, 128, 128),
    'aqua': (0, 255, 255), 'cyan': (0, 255, 255), 'blue': (0, 0, 255), 'navy': (0, 0, 128),
    'fuchsia': (255, 0, 255), 'magenta': (255, 0, 255), 'purple': (128, 0, 128),
    'greenscreen': (0, 177, 64), 'bluescreen': (0, 71, 187),
    'default': DEFAULT_TARGET_BGR,
}


def parse_color(text):
    """'R,G,B' (0-255), '#RRGGBB' or a name of NAMED_COLORS (any case) -> RGB float32 array in
    [0, 1]; None if `text` is not a colour.

    Names have no dot or slash, so a file name with an extension or a folder is never taken for
    a colour, nor the other way round. ValueError for a component above 255.
    """
    text = text.strip()
    if text.lower() in NAMED_COLORS:
        return np.array(NAMED_COLORS[text.lower()], np.float32) / 255.0
    match = re.fullmatch(r'#([0-9a-fA-F]{6})', text)
    if match:
        values = [int(match.group(1)[i:i + 2], 16) for i in (0, 2, 4)]
    else:
        match = re.fullmatch(r'(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})', text)
        if not match:
            return None
        values = [int(v) for v in match.groups()]
        if max(values) > 255:
            raise ValueError(f'colour {text!r}: components must be 0-255')
    return np.array(values, np.float32) / 255.0


def composite(fgr, pha, target):
    """fgr * pha + target * (1 - pha): the foreground over a new background.

    fgr (H, W, 3), pha (H, W, 1), target (H, W, 3) or an RGB colour (3,).
    """
    return fgr * pha + np.asarray(target, np.float32) * (1.0 - pha)


def rgba(fgr, pha):
    """The foreground with the matte as its alpha channel (H, W, 4).

    Colour is zeroed where alpha is 0 (as the official scripts do), which keeps the PNG small
    and hides the meaningless foreground colour of pure background pixels. "0" means 0 once
    stored as 8 bits (alpha < 0.5 / 255), so that no pixel of alpha 0 in the file has colour.
    """
    return np.concatenate([fgr * (pha >= 0.5 / 255), pha], axis=2)


def nchw_to_images(batch):
    """(B, C, H, W) -> list of B arrays (H, W, C)."""
    return list(np.ascontiguousarray(batch.transpose(0, 2, 3, 1)))


def images_to_nchw(images):
    """list of B arrays (H, W, 3), all the same size -> (B, 3, H, W) float32."""
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2), dtype=np.float32)


def output_images(result, kinds, targets):
    """Images of the requested output kinds for each element of a (cropped) network result.

    Args:
        result: dict with 'pha' (B,1,H,W), 'fgr' (B,3,H,W) and, if asked for, 'err' and 'ref'
            (B,1,H,W), already at the input size.
        kinds: output kinds to make (subset of OUTPUT_KINDS).
        targets: per element, the new background for 'new': (H,W,3) image or (3,) colour.
    Returns: list (one per element) of dict kind -> HWC float32 image; pha, err and ref are
        (H, W, 1), fgr and new (H, W, 3), com (H, W, 4).
    """
    phas = nchw_to_images(result['pha'])
    fgrs = nchw_to_images(result['fgr'])
    extra = {k: nchw_to_images(result[k]) for k in ('err', 'ref') if k in kinds}
    outputs = []
    for i, (pha, fgr) in enumerate(zip(phas, fgrs)):
        images = {}
        for kind in kinds:
            if kind == 'pha':
                images[kind] = pha
            elif kind == 'fgr':
                images[kind] = fgr
            elif kind == 'com':
                images[kind] = rgba(fgr, pha)
            elif kind == 'new':
                images[kind] = composite(fgr, pha, targets[i])
            else:
                images[kind] = extra[kind][i]
        outputs.append(images)
    return outputs
