"""Draw image/readme/samples.png for the README: each sample's src, plate, pha and new.

    python predict.py --output-dir image/readme/predict --overwrite
    python tools/readme_pictures.py image/readme/predict image/readme/samples.png
"""
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from utils.image_io import read_image, write_image  # noqa: E402

SAMPLES = 'dataset/samples'


def tile(path, width=320):
    img = read_image(path)
    height = int(round(img.shape[0] * width / img.shape[1]))
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)


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
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=1.0) for r in rows]
    write_image(out_path, np.concatenate(rows, axis=0))


if __name__ == '__main__':
    main(*sys.argv[1:3])
