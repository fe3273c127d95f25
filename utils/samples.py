"""The sample inputs shipped in dataset/samples (what `python predict.py` runs on by default).

    python -m utils.samples [OUT_DIR]      # default: dataset/samples

Writes a few source/background pairs as OUT_DIR/src/NAME.EXT and OUT_DIR/bgr/NAME.EXT, and
their true alpha mattes as OUT_DIR/pha/NAME.png (to measure a model on them). They are made by
`dataset.synthetic.make_sample_pair`: a made-up subject over a made-up room or outdoor scene,
and a plate with what a second capture differs by (noise, a slight misalignment, exposure), so
no third-party images are needed. Everything is a function of the seeds below, so the files
can be regenerated exactly (up to the encoders' versions); a test checks that the shipped files
are what this module writes, so a change to the scene generator cannot leave them stale.

One pair has an odd size (not a multiple of 4) on purpose, to exercise padding. The large
pairs are JPEG (quality 95): their sensor noise makes PNGs of 2-3 MB, too much for a repository.
"""
import argparse
import os
import sys

import cv2
import numpy as np

# name, (height, width), seed, extension
SAMPLES = (
    ('indoor', (720, 1280), 1, '.jpg'),
    ('outdoor', (720, 1280), 6, '.jpg'),
    ('studio_odd_size', (382, 510), 2, '.png'),
)
JPEG_QUALITY = 95
DEFAULT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           'dataset', 'samples')


def _encode(img, ext):
    """float RGB or single-channel (H, W, 1) [0, 1] -> bytes: JPEG at JPEG_QUALITY, or PNG at the
    highest compression."""
    from utils.image_io import to_uint8
    bgr = np.ascontiguousarray(to_uint8(img)[:, :, ::-1])
    params = ([cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext == '.jpg'
              else [cv2.IMWRITE_PNG_COMPRESSION, 9])
    ok, buf = cv2.imencode(ext, bgr, params)
    if not ok:
        raise RuntimeError(f'OpenCV could not encode {ext}')
    return buf.tobytes()


def make_samples(out_dir=DEFAULT_DIR):
    """Write the sample pairs into out_dir/src and out_dir/bgr; returns the written paths."""
    from dataset.synthetic import make_sample_pair
    from utils.image_io import atomic_write_bytes
    written = []
    for name, (h, w), seed, ext in SAMPLES:
        src, bgr, pha, _fgr = make_sample_pair(h, w, seed=seed)
        for kind, img, kind_ext in (('src', src, ext), ('bgr', bgr, ext), ('pha', pha, '.png')):
            path = os.path.join(out_dir, kind, name + kind_ext)
            atomic_write_bytes(path, _encode(img, kind_ext))
            written.append(path)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description='Write the sample src/bgr pairs of dataset/samples.')
    parser.add_argument('out_dir', nargs='?', default=DEFAULT_DIR, help='default: dataset/samples')
    args = parser.parse_args(argv)
    for path in make_samples(args.out_dir):
        print(f'{path} ({os.path.getsize(path) / 1e3:.0f} kB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
