"""A naive difference key, the baseline the default model is compared with.

alpha = ramp(|src - bgr|): the per-pixel colour distance to the clean plate (largest channel
difference, lightly blurred so that sensor noise does not key), mapped linearly from
`low` (alpha 0) to `high` (alpha 1), then feathered with a Gaussian. The foreground is the
source itself. This is what "difference matting" tools do without any learning.

    python -m utils.evaluation.baseline SRC_DIR BGR_DIR OUT_DIR   # writes OUT_DIR/pha, OUT_DIR/fgr
"""
import argparse
import os
import sys

import cv2
import numpy as np
from tqdm import tqdm

from utils.evaluation.samples import EvaluationError, images_by_stem, match_names
from utils.image_io import ImageReadError, read_image, write_image


def difference_key(src, bgr, low=0.04, high=0.16, denoise_sigma=1.0, feather_sigma=1.5):
    """src, bgr (H, W, 3) float32 in [0, 1] -> alpha (H, W) float32 in [0, 1]."""
    if src.shape != bgr.shape:
        raise ValueError(f'src {src.shape} and bgr {bgr.shape} differ in size')
    diff = np.abs(src - bgr).max(axis=2)
    if denoise_sigma > 0:
        diff = cv2.GaussianBlur(diff, (0, 0), denoise_sigma)
    pha = np.clip((diff - low) / (high - low), 0.0, 1.0)
    if feather_sigma > 0:
        pha = cv2.GaussianBlur(pha, (0, 0), feather_sigma)
    return pha.astype(np.float32)


def key_folder(src_dir, bgr_dir, out_dir, progress=True, **options):
    """Key every src_dir/<name> against bgr_dir/<name> (matched by file-name stem, as eval.py
    matches files); writes out_dir/pha and out_dir/fgr PNGs."""
    sources = images_by_stem(src_dir, 'source')
    plates = images_by_stem(bgr_dir, 'background')
    match_names('the source folder', sources, 'the background folder', plates)
    for stem in tqdm(sorted(sources), desc='difference key', disable=not progress):
        src = read_image(sources[stem])
        pha = difference_key(src, read_image(plates[stem]), **options)
        write_image(os.path.join(out_dir, 'pha', stem + '.png'), pha)
        write_image(os.path.join(out_dir, 'fgr', stem + '.png'), src)
    return len(sources)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Naive difference-key matting (baseline).')
    parser.add_argument('src_dir')
    parser.add_argument('bgr_dir', help='clean plates with the same file names as src_dir')
    parser.add_argument('out_dir')
    parser.add_argument('--low', type=float, default=0.04, help='difference keyed as alpha 0')
    parser.add_argument('--high', type=float, default=0.16, help='difference keyed as alpha 1')
    parser.add_argument('--feather', type=float, default=1.5, help='Gaussian feather sigma (px)')
    args = parser.parse_args(argv)
    try:
        count = key_folder(args.src_dir, args.bgr_dir, args.out_dir, low=args.low, high=args.high,
                           feather_sigma=args.feather)
    except (EvaluationError, ValueError, ImageReadError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'keyed {count} images -> {args.out_dir}/pha, {args.out_dir}/fgr')
    return 0


if __name__ == '__main__':
    sys.exit(main())
