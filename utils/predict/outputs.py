"""predict.py's outputs: staged in a hidden folder, published only when the whole run succeeded.

Nothing is written in place while the run is going: all outputs go to a hidden staging
folder inside the output folder (`.predict-partial-<pid>-*`) and are moved to their final
names only when every item succeeded. Existing outputs are checked before the run starts:
files that predict.py itself wrote there (listed, with their size and modification time, in
the folder's MANIFEST_FILE) are replaced, so the same command can be run again; any other
existing file stops the run at once unless `overwrite` is set. A run that fails leaves the
output folder as it was; staging folders left by a killed run (SIGKILL, power loss) are
removed by the next run once their process is gone.
"""
import json
import os
import re
import shutil
import tempfile
import time

from utils.image_io import atomic_write_bytes, write_image
from utils.predict.options import PredictError
from utils.video_io import VideoFileWriter, VideoWriteError, default_video_codec

# What predict.py wrote into an output folder: {relative path: signature}; see _signature.
MANIFEST_FILE = '.predict-outputs.json'
PARTIAL_PREFIX = '.predict-partial-'
# A staging folder whose name carries no process id is stale after this long.
STALE_PARTIAL_SECONDS = 24 * 3600


def _signature(path):
    """[size, mtime_ns] of a file; for a folder (image sequence), {name: signature} of its files."""
    if os.path.isdir(path) and not os.path.islink(path):
        return {name: _signature(os.path.join(path, name)) for name in sorted(os.listdir(path))}
    info = os.lstat(path)
    return [info.st_size, info.st_mtime_ns]


def read_manifest(output_dir):
    """{relative path: signature} of the outputs predict.py wrote into output_dir ({} if none)."""
    try:
        with open(os.path.join(output_dir, MANIFEST_FILE), encoding='utf-8') as f:
            manifest = json.load(f)
        return manifest['outputs'] if isinstance(manifest.get('outputs'), dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def _ours(output_dir, unit, manifest):
    """True if `unit` is, unchanged since, an output predict.py wrote."""
    try:
        return unit in manifest and manifest[unit] == _signature(os.path.join(output_dir, unit))
    except OSError:
        return False


def _process_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: alive
        return True
    return True


def remove_stale_partials(output_dir):
    """Delete staging folders of runs whose process is gone; returns their paths."""
    removed = []
    try:
        names = os.listdir(output_dir)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(PARTIAL_PREFIX):
            continue
        path = os.path.join(output_dir, name)
        match = re.match(re.escape(PARTIAL_PREFIX) + r'(\d+)-', name)
        try:
            stale = (not _process_alive(int(match.group(1))) if match
                     else time.time() - os.path.getmtime(path) > STALE_PARTIAL_SECONDS)
        except OSError:
            continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


class OutputStaging:
    """Stage a run's outputs in a hidden folder inside `output_dir`; publish them on success.

    `units` are the paths (relative to output_dir) the run produces: files, or folders that
    are replaced as a whole (image sequences). They are checked before anything runs: an
    existing one that predict.py did not write (see MANIFEST_FILE) is an error unless
    `overwrite`. `commit()` moves every unit into place and records it in the manifest;
    `abort()` deletes the staging folder, leaving output_dir as it was.
    """

    def __init__(self, output_dir, units, overwrite):
        self.output_dir = output_dir
        self.units = list(units)
        manifest = read_manifest(output_dir)
        existing = [u for u in self.units if os.path.lexists(os.path.join(output_dir, u))
                    and not _ours(output_dir, u, manifest)]
        if existing and not overwrite:
            more = f' (and {len(existing) - 1} more)' if len(existing) > 1 else ''
            raise PredictError(f'{os.path.join(output_dir, existing[0])} already exists and was not '
                               f'written by predict.py{more}; pass --overwrite to replace it, or '
                               f'choose another --output-dir')
        self._created = not os.path.isdir(output_dir)
        try:
            os.makedirs(output_dir, exist_ok=True)
            remove_stale_partials(output_dir)
            self.dir = tempfile.mkdtemp(prefix=f'{PARTIAL_PREFIX}{os.getpid()}-', dir=output_dir)
        except OSError as e:
            raise PredictError(f'{output_dir}: cannot write to the output directory '
                               f'({e.strerror or e}); choose another --output-dir') from None

    def path(self, relative):
        return os.path.join(self.dir, relative)

    def commit(self):
        trash = os.path.join(self.dir, '.replaced')
        published = {}
        for unit in self.units:
            staged, final = self.path(unit), os.path.join(self.output_dir, unit)
            if not os.path.lexists(staged):
                continue
            os.makedirs(os.path.dirname(final) or '.', exist_ok=True)
            if os.path.isdir(final) and not os.path.islink(final):
                # a folder unit (image sequence) replaces the old folder, stale frames and all
                os.makedirs(trash, exist_ok=True)
                os.replace(final, os.path.join(trash, unit.replace(os.sep, '_')))
            os.replace(staged, final)  # keeps size and mtime: the signature stays valid
            published[unit] = _signature(final)
        self._record(published)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _record(self, published):
        """Add the published units to the manifest (entries of files gone or changed are dropped)."""
        previous = read_manifest(self.output_dir)
        outputs = {u: sig for u, sig in previous.items()
                   if u not in published and _ours(self.output_dir, u, previous)}
        outputs.update(published)
        data = json.dumps({'written_by': 'predict.py', 'outputs': outputs}, indent=1, sort_keys=True)
        atomic_write_bytes(os.path.join(self.output_dir, MANIFEST_FILE), data.encode())

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
        return [video_file_name(kind) for kind in kinds]
    return list(kinds)


def video_file_name(kind):
    """'com' (RGBA) keeps its alpha as VP9 in .webm; the other kinds are H.264 .mp4."""
    return f'{kind}.webm' if kind == 'com' else f'{kind}.mp4'


# Outputs that show the scene as a viewer sees it get the source's audio track.
KINDS_WITH_AUDIO = ('com', 'new')


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
    """Writes <staging>/<prefix>/<kind>.mp4 (com.webm) or <kind>/000000.png ... per output kind.

    Video files are H.264 (mp4v when imageio-ffmpeg is missing, with a note through `warn`);
    com and new carry the audio track of `audio_from` when it has one.
    """

    def __init__(self, staging, kinds, video_output_type, fps, size, warn, prefix='', audio_from=None):
        self.staging = staging
        self.prefix = prefix
        self.sequence = video_output_type == 'png_sequence'
        self.writers = {}
        if not self.sequence:
            try:
                for kind in kinds:
                    self.writers[kind] = VideoFileWriter(
                        staging.path(os.path.join(prefix, video_file_name(kind))), fps, size,
                        codec='vp9-alpha' if kind == 'com' else default_video_codec(),
                        audio_from=audio_from if kind in KINDS_WITH_AUDIO else None)
            except VideoWriteError:
                self.close(commit=False)
                raise
            for note in dict.fromkeys(n for w in self.writers.values() for n in w.notes):
                warn(note.replace(staging.dir, staging.output_dir))
            writer = next(iter(self.writers.values()), None)
            if writer is not None and writer.padded:
                warn(f'video needs an even width and height: the videos are {writer.size[0]}x'
                     f'{writer.size[1]} (last row/column repeated) for {size[0]}x{size[1]} frames; '
                     f'use --video-output-type png_sequence for the exact size')

    def __call__(self, job):
        index, images = job
        for kind, img in images.items():
            if self.sequence:
                write_image(self.staging.path(os.path.join(self.prefix, kind, f'{int(index):06d}.png')),
                            _squeeze(img))
            else:
                self.writers[kind].write(img)

    def close(self, commit):
        for writer in self.writers.values():
            writer.close(commit)


def _squeeze(img):
    return img[:, :, 0] if img.ndim == 3 and img.shape[2] == 1 else img

