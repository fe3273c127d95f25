"""The background of predict.py's 'new' output: a colour, an image or a video."""
import os

import numpy as np

from utils.image_io import cover_crop, read_image
from utils.predict.compose import DEFAULT_TARGET_BGR, parse_color, resize_image
from utils.predict.options import PredictError, UsageError
from utils.video_io import VideoReader, is_video_file

class TargetBackground:
    """The background of the 'new' output: a colour, an image (scaled to cover each output,
    centre-cropped) or, for videos, a video played along (looped when shorter)."""

    def __init__(self, spec, mode):
        self.spec = spec
        self.color = None
        self.image = None
        self.video = None
        if spec is None:
            self.color = np.array(DEFAULT_TARGET_BGR, np.float32) / 255.0
            return
        try:
            self.color = parse_color(spec)
        except ValueError as e:
            raise UsageError(f'--target-bgr {e}') from None
        if self.color is not None:
            return
        if not os.path.isfile(spec):
            raise PredictError(f'{spec}: no such file, and not a colour; --target-bgr takes an '
                               f'image, a video or a colour like 0,255,0 or #00ff00')
        if is_video_file(spec):
            if mode != 'video':
                raise UsageError(f'{spec}: a video as --target-bgr needs a video as --src')
            VideoReader(spec).close()  # fail now if it cannot be read
            self.video = spec
        else:
            self.image = read_image(spec)
        self._resized = {}

    def frames(self, width, height):
        """Endless iterator of backgrounds for outputs of this size (one per frame)."""
        if self.color is not None:
            while True:
                yield self.color
        if self.image is not None:
            if (width, height) not in self._resized:
                self._resized[(width, height)] = cover_crop(self.image, width, height, resize_image)
            while True:
                yield self._resized[(width, height)]
        while True:  # a video: loop it
            for frame in VideoReader(self.video):
                yield cover_crop(frame, width, height, resize_image)

    def for_image(self, width, height):
        return next(self.frames(width, height))

