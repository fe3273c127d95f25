"""Draw image/readme/samples.png for the README: each sample's src, plate, pha and new; print
how far each predicted alpha is from the sample's true alpha (dataset/samples/pha).

    python predict.py --output-dir image/readme/predict --overwrite
    python tools/readme_pictures.py image/readme/predict image/readme/samples.png

Printed per sample: whole-image SAD (/1000), pixels of background kept (predicted alpha > 0.5
where the truth is < 0.01) and holes (predicted alpha < 0.5 where the truth is > 0.95).
"""
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from utils.evaluation.metrics import sad_image  # noqa: E402
from utils.image_io import read_image, write_image  # noqa: E402
from utils.samples import DEFAULT_DIR as SAMPLES  # noqa: E402


def tile(path, width=320):
    img = read_image(path)
    height = int(round(img.shape[0] * width / img.shape[1]))
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)


def score(pred_path, truth_path):
    """(whole-image SAD, background pixels kept, hole pixels) of a predicted alpha."""
    pred, truth = read_image(pred_path, mode='gray'), read_image(truth_path, mode='gray')
    return sad_image(pred, truth), int(((pred > 0.5) & (truth < 0.01)).sum()), int(((pred < 0.5) & (truth > 0.95)).sum())


def main(pred_dir, out_path):
    names = sorted(os.path.splitext(n)[0] for n in os.listdir(os.path.join(SAMPLES, 'src')))
    rows = []
    for name in names:
        ext = os.path.splitext([n for n in os.listdir(os.path.join(SAMPLES, 'src')) if n.startswith(name + '.')][0])[1]
        tiles = [tile(os.path.join(SAMPLES, 'src', name + ext)), tile(os.path.join(SAMPLES, 'bgr', name + ext)),
                 tile(os.path.join(pred_dir, 'pha', name + '.png')), tile(os.path.join(pred_dir, 'new', name + '.png'))]
        height = max(t.shape[0] for t in tiles)
        tiles = [np.pad(t, ((0, height - t.shape[0]), (0, 4), (0, 0)), constant_values=1.0) for t in tiles]
        rows.append(np.pad(np.concatenate(tiles, axis=1), ((0, 4), (0, 0), (0, 0)), constant_values=1.0))
        truth = os.path.join(SAMPLES, 'pha', name + '.png')
        if os.path.exists(truth):
            sad, kept, holes = score(os.path.join(pred_dir, 'pha', name + '.png'), truth)
            print(f'{name}: SAD {sad:.1f}, background kept {kept} px, holes {holes} px')
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=1.0) for r in rows]
    write_image(out_path, np.concatenate(rows, axis=0))


if __name__ == '__main__':
    main(*sys.argv[1:3])
