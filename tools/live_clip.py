"""Write a clip that stands in for a camera in `predict.py --camera CLIP`: the plate for the
first frames (the empty scene, averaged into the plate), then the source, each frame with its
own sensor noise as a real camera gives.

    python tools/live_clip.py dataset/samples/src/indoor.jpg dataset/samples/bgr/indoor.jpg \\
        log/live_640x360.mp4 --size 640 360
    python predict.py --camera log/live_640x360.mp4 --headless --record log/live.mp4 -y
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from utils.predict.compose import resize_image  # noqa: E402
from utils.image_io import read_image  # noqa: E402
from utils.video_io import VideoFileWriter  # noqa: E402


def write_clip(src, bgr, path, size, frames=150, plate_frames=10, fps=30.0, noise=0.01, seed=0):
    """Plate for `plate_frames` frames, then the source, to `frames` frames at `fps`."""
    rng = np.random.default_rng(seed)
    src, bgr = resize_image(src, size), resize_image(bgr, size)
    writer = VideoFileWriter(path, fps, size)
    try:
        for index in range(frames):
            image = bgr if index < plate_frames else src
            writer.write(np.clip(image + rng.normal(0, noise, image.shape).astype(np.float32), 0, 1))
    except BaseException:
        writer.close(commit=False)
        raise
    writer.close(commit=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src')
    parser.add_argument('bgr')
    parser.add_argument('output')
    parser.add_argument('--size', type=int, nargs=2, default=(640, 360), metavar=('W', 'H'))
    parser.add_argument('--frames', type=int, default=150)
    parser.add_argument('--plate-frames', type=int, default=10)
    parser.add_argument('--fps', type=float, default=30.0)
    args = parser.parse_args(argv)
    write_clip(read_image(args.src), read_image(args.bgr), args.output, tuple(args.size),
               args.frames, args.plate_frames, args.fps)


if __name__ == '__main__':
    main()
