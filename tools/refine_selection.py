"""How much of a network's matte error comes from the choice of the patches it refines.

Sampling refinement (predict.py's default: 80,000 pixels, the official HD setting) re-predicts
only the 4x4 patches the network's error map ranks worst; everywhere else the matte is the
coarse one, upsampled. On eval.py's composites this prints the mean unknown-region SAD of:

    coarse   no patch refined (the upsampled coarse matte)
    network  the patches the network picks (sampling mode, what predict.py runs)
    truth    as many patches, those whose coarse alpha is truly worst (needs the ground truth)
    full     every patch refined (--refine-mode full)

"network" far above "truth" means a better error map (train.py --loss-error-weight) would help
at the same cost; "truth" near "full" means the budget is enough for these images.

    python eval.py --dataset real --prepare-only --no-progress     # prints the composites folder
    python tools/refine_selection.py WEIGHTS COMPOSITES [--pixels 80000]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from model.options import REFINE_DEFAULTS  # noqa: E402
from utils.evaluation.metrics import crop_to_multiple_of_4, quantize_8bit, sad  # noqa: E402
from utils.image_io import list_images, read_image  # noqa: E402

PATCH = 4  # the refiner's patch size at full resolution


def worst_patches(error, count):
    """(H, W) bool mask of the `count` 4x4 patches with the largest summed `error` (H, W)."""
    h, w = error.shape[0] // PATCH, error.shape[1] // PATCH
    per_patch = error[:h * PATCH, :w * PATCH].reshape(h, PATCH, w, PATCH).sum(axis=(1, 3))
    chosen = np.zeros(h * w, bool)
    chosen[np.argsort(-per_patch, axis=None, kind='stable')[:count]] = True
    mask = np.zeros(error.shape, bool)
    mask[:h * PATCH, :w * PATCH] = np.kron(chosen.reshape(h, w), np.ones((PATCH, PATCH), bool))
    return mask


def selection_scores(weights, composites, pixels=REFINE_DEFAULTS.refine_sample_pixels, progress=True):
    """{'coarse', 'network', 'truth', 'full'}: mean unknown-region SAD over the composites."""
    from tqdm import tqdm
    from utils.deploy.engine import create_engine
    from utils.evaluation.protocol import run_model

    engines = {
        # err_sm is clipped to [0, 1]: a threshold above 1 refines nothing
        'coarse': create_engine(weights, engine='dygraph', refine_mode='thresholding', refine_threshold=2.0),
        'network': create_engine(weights, engine='dygraph', refine_mode='sampling', refine_sample_pixels=pixels),
        'full': create_engine(weights, engine='dygraph', refine_mode='full'),
    }
    totals = dict.fromkeys(('coarse', 'network', 'truth', 'full'), 0.0)
    names = [os.path.basename(p) for p in list_images(os.path.join(composites, 'src'))]
    if not names:
        raise SystemExit(f'error: no images in {composites}/src: give the folder eval.py --prepare-only prints')
    for name in tqdm(names, desc='composites', disable=not progress):
        # cropped as eval.py does: the network needs multiples of 4, and so does scoring
        src, bgr, true_pha, trimap = (
            crop_to_multiple_of_4(read_image(os.path.join(composites, sub, name), mode))
            for sub, mode in (('src', 'rgb'), ('bgr', 'rgb'), ('pha', 'gray'), ('trimap', 'gray')))
        pred = {kind: run_model(engine, src, bgr)[0] for kind, engine in engines.items()}
        chosen = worst_patches(np.abs(pred['coarse'] - true_pha), pixels // (PATCH * PATCH))
        pred['truth'] = np.where(chosen, pred['full'], pred['coarse'])
        for kind, pha in pred.items():
            totals[kind] += sad(quantize_8bit(pha), true_pha, trimap)
    return {kind: total / len(names) for kind, total in totals.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('weights', help='.pdparams or official .pth weights of a MattingRefine')
    parser.add_argument('composites', help="eval.py's composites folder (src/, bgr/, pha/, trimap/)")
    parser.add_argument('--pixels', type=int, default=REFINE_DEFAULTS.refine_sample_pixels,
                        help='refined pixels of the sampling mode (default: %(default)d)')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    for kind, value in selection_scores(args.weights, args.composites, args.pixels, not args.no_progress).items():
        print(f'{kind:8s} SAD {value:.2f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
