"""Image reading and atomic writing shared by predict.py, eval.py, train.py and the datasets.

Images are handled as float32 numpy arrays in [0, 1], HWC, RGB order (OpenCV's BGR is
converted at the boundary so nothing else in the project has to think about it).
"""
import os
import struct
import tempfile
import zlib

import cv2
import numpy as np

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


class ImageReadError(ValueError):
    """An image file is missing, unreadable or corrupt. The message names the file."""


def cover_crop(img, width, height, resize, rounding=round):
    """Scale an HWC image, aspect kept, to cover width x height, then crop the centre to exactly that.

    resize(img, (w, h)) does the resampling and rounding(float) -> int the scaled size, so that
    each caller keeps its own resampling policy (predict's targets, eval's composites).
    """
    h, w = img.shape[:2]
    scale = max(width / w, height / h)
    sw, sh = max(width, rounding(w * scale)), max(height, rounding(h * scale))
    if (sw, sh) != (w, h):
        img = resize(img, (sw, sh))
    top, left = (sh - height) // 2, (sw - width) // 2
    return np.ascontiguousarray(img[top:top + height, left:left + width])


def is_image_file(path):
    return path.lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder, recursive=False):
    """Image files in `folder` (hidden files skipped), as paths relative to it, sorted.

    recursive: also in subfolders (symlinks followed); the relative paths then use '/'
    separators, so the order is the same on every machine and a pha folder and a fgr folder
    with the same layout pair up file by file.
    """
    if not recursive:
        return sorted(name for name in os.listdir(folder)
                      if not name.startswith('.') and is_image_file(name)
                      and os.path.isfile(os.path.join(folder, name)))
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames.sort()
        for name in filenames:
            if is_image_file(name) and not name.startswith('.'):
                found.append(os.path.relpath(os.path.join(dirpath, name), folder).replace(os.sep, '/'))
    return sorted(found)


def _to_float(img, path):
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    if img.dtype in (np.float32, np.float64):
        return np.clip(img.astype(np.float32), 0.0, 1.0)
    raise ImageReadError(f'{path}: unsupported pixel type {img.dtype}; save it as 8- or 16-bit PNG/JPEG')


def png_problem(data):
    """Why PNG bytes are corrupt (a truncated file, a chunk failing its CRC), or None.

    Checked before decoding because libpng prints its own `libpng error: ...` line to stderr
    for these files before OpenCV gives up; the caller raises one clear error instead.
    """
    data = memoryview(data).cast('B')
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            return f'truncated in the {kind.decode("latin-1")} chunk'
        crc, = struct.unpack('>I', data[end - 4:end])
        if zlib.crc32(data[pos + 4:end - 4]) != crc:
            return f'the {kind.decode("latin-1")} chunk fails its CRC check'
        if kind == b'IEND':
            return None
        pos = end
    return 'truncated (no IEND chunk)'


def read_image(path, mode='rgb'):
    """Read an image file as float32 in [0, 1].

    mode='rgb': (H, W, 3); grayscale is repeated to 3 channels, an alpha channel is dropped.
    mode='gray': (H, W); a colour image is converted to luma, an RGBA image keeps its alpha
        channel when the colour channels carry no information (alpha mattes saved as RGBA).
    mode='rgba': (H, W, 4); images without alpha get an opaque alpha.
    8-bit and 16-bit files are both accepted.
    """
    if not os.path.isfile(path):
        raise ImageReadError(f'{path}: no such file; check the path')
    data = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode also handles non-ASCII paths
    if data[:len(PNG_SIGNATURE)].tobytes() == PNG_SIGNATURE:
        problem = png_problem(data)
        if problem:
            raise ImageReadError(f'{path}: corrupt PNG ({problem}); re-save or re-copy it')
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ImageReadError(f'{path}: not a readable image (corrupt or unsupported format); '
                             f're-save it as PNG or JPEG')
    img = _to_float(img, path)
    if img.ndim == 2:
        gray, alpha = img, None
        rgb = np.repeat(img[:, :, None], 3, axis=2)
    else:
        channels = img.shape[2]
        if channels == 1:
            gray, alpha = img[:, :, 0], None
            rgb = np.repeat(img, 3, axis=2)
        elif channels in (3, 4):
            rgb = img[:, :, 2::-1]
            alpha = img[:, :, 3] if channels == 4 else None
            gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        else:
            raise ImageReadError(f'{path}: {channels}-channel images are not supported; '
                                 f'use gray, RGB or RGBA')
    if mode == 'rgb':
        return np.ascontiguousarray(rgb, dtype=np.float32)
    if mode == 'gray':
        if alpha is not None and float(np.ptp(gray)) == 0.0:
            return np.ascontiguousarray(alpha, dtype=np.float32)
        return np.ascontiguousarray(gray, dtype=np.float32)
    if mode == 'rgba':
        if alpha is None:
            alpha = np.ones(rgb.shape[:2], np.float32)
        return np.ascontiguousarray(np.dstack([rgb, alpha]), dtype=np.float32)
    raise ValueError(f"mode must be 'rgb', 'gray' or 'rgba', got {mode!r}")


def to_uint8(img):
    """float [0, 1] -> uint8 with rounding (not truncation, which biases dark)."""
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def default_permissions(path):
    """Give a file made by mkstemp (private, 0600) the permissions open() would have given it."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def atomic_write_bytes(path, data):
    """Write bytes to `path` so that readers never see a half-written file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp_', suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        default_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def encode_image(img, ext='.png'):
    """float [0,1] HW / HWC(RGB|RGBA) or uint8 -> encoded bytes (`ext` picks the format)."""
    if img.dtype != np.uint8:
        img = to_uint8(img)
    if img.ndim == 3 and img.shape[2] == 3:
        img = img[:, :, ::-1]
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, [2, 1, 0, 3]]
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(img))
    if not ok:
        raise RuntimeError('OpenCV could not encode the image')
    return buf.tobytes()


def write_image(path, img):
    """Write a float [0, 1] (or uint8) gray/RGB/RGBA image atomically; format from the extension."""
    ext = os.path.splitext(path)[1].lower() or '.png'
    atomic_write_bytes(path, encode_image(img, ext))
