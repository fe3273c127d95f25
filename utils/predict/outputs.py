"""predict.py's outputs: staged in a hidden folder, published only when the whole run succeeded.

Nothing is written in place while the run is going: all outputs go to a hidden staging
folder inside the output folder and are moved to their final names only when every item
succeeded. Existing outputs are checked before the run starts, so a run that would replace
them stops at once unless `overwrite` is set, and a run that fails leaves them untouched.
"""
import os
import shutil
import tempfile

from utils.image_io import write_image
from utils.predict.options import PredictError
from utils.video_io import VideoFileWriter, VideoWriteError

class OutputStaging:
    """Stage a run's outputs in a hidden folder inside `output_dir`; publish them on success.

    `units` are the paths (relative to output_dir) the run produces: files, or folders that
    are replaced as a whole (image sequences). They are checked before anything runs: an
    existing one is an error unless `overwrite`. `commit()` moves every unit into place;
    `abort()` deletes the staging folder, leaving output_dir as it was.
    """

    def __init__(self, output_dir, units, overwrite):
        self.output_dir = output_dir
        self.units = list(units)
        existing = [u for u in self.units if os.path.lexists(os.path.join(output_dir, u))]
        if existing and not overwrite:
            more = f' (and {len(existing) - 1} more outputs)' if len(existing) > 1 else ''
            raise PredictError(f'{os.path.join(output_dir, existing[0])} already exists{more}; pass '
                               f'--overwrite to replace, or choose another --output-dir')
        self._created = not os.path.isdir(output_dir)
        try:
            os.makedirs(output_dir, exist_ok=True)
            self.dir = tempfile.mkdtemp(prefix='.predict-partial-', dir=output_dir)
        except OSError as e:
            raise PredictError(f'{output_dir}: cannot write to the output directory '
                               f'({e.strerror or e}); choose another --output-dir') from None

    def path(self, relative):
        return os.path.join(self.dir, relative)

    def commit(self):
        trash = os.path.join(self.dir, '.replaced')
        for unit in self.units:
            staged, final = self.path(unit), os.path.join(self.output_dir, unit)
            if not os.path.lexists(staged):
                continue
            os.makedirs(os.path.dirname(final) or '.', exist_ok=True)
            if os.path.isdir(final) and not os.path.islink(final):
                # a folder unit (image sequence) replaces the old folder, stale frames and all
                os.makedirs(trash, exist_ok=True)
                os.replace(final, os.path.join(trash, unit.replace(os.sep, '_')))
            os.replace(staged, final)
        shutil.rmtree(self.dir, ignore_errors=True)

    def abort(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        if self._created:
            try:
                os.rmdir(self.output_dir)  # only if still empty
            except OSError:
                pass


def _image_units(names, kinds):
    return [os.path.join(kind, f'{name}.png') for name in names for kind in kinds]


def _video_units(kinds, video_output_type):
    if video_output_type == 'video':
        return [f'{kind}.mp4' for kind in kinds]
    return list(kinds)


class ImageSink:
    """Writes <staging>/<kind>/<name>.png for every output image."""

    def __init__(self, staging):
        self.staging = staging

    def __call__(self, job):
        name, images = job
        for kind, img in images.items():
            write_image(self.staging.path(os.path.join(kind, f'{name}.png')), _squeeze(img))

    def close(self, commit):
        pass


class VideoSink:
    """Writes <staging>/<kind>.mp4 or <staging>/<kind>/000000.png ... per output kind."""

    def __init__(self, staging, kinds, video_output_type, fps, size, warn):
        self.staging = staging
        self.sequence = video_output_type == 'png_sequence'
        self.writers = {}
        if not self.sequence:
            try:
                for kind in kinds:
                    self.writers[kind] = VideoFileWriter(staging.path(f'{kind}.mp4'), fps, size)
            except VideoWriteError:
                self.close(commit=False)
                raise
            writer = next(iter(self.writers.values()), None)
            if writer is not None and writer.padded:
                warn(f'mp4 needs an even width and height: the videos are {writer.size[0]}x'
                     f'{writer.size[1]} (last row/column repeated) for {size[0]}x{size[1]} frames; '
                     f'use --video-output-type png_sequence for the exact size')

    def __call__(self, job):
        index, images = job
        for kind, img in images.items():
            if self.sequence:
                write_image(self.staging.path(os.path.join(kind, f'{int(index):06d}.png')), _squeeze(img))
            else:
                self.writers[kind].write(img)

    def close(self, commit):
        for writer in self.writers.values():
            writer.close(commit)


def _squeeze(img):
    return img[:, :, 0] if img.ndim == 3 and img.shape[2] == 1 else img

