"""Tests of predict.py: every input form and output kind, odd sizes, alignment, bad inputs.

Most tests call `predict.main([...])` in-process on small generated images (64x96 and the
odd 66x98, sampling mode, dygraph engine); two run `python predict.py` as a subprocess to
check exit codes and messages end to end. Weights: the official-format reference checkpoint
(.pth, converted on the fly) and its .pdparams conversion (conftest fixtures).
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

import predict
from test_alignment import shifted_scene
from utils.image_io import read_image, write_image
from utils.predict.outputs import MANIFEST_FILE, PARTIAL_PREFIX

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GREEN = np.array([120, 255, 155], np.float32) / 255


# --------------------------------------------------------------------------- helpers

def scene(h, w, seed=0, shift=0):
    """(src, bgr, pha) float32: a soft-edged disc over a smooth random background.

    `shift` moves the disc (consecutive video frames)."""
    rng = np.random.default_rng(seed)
    bgr = cv2.resize(rng.random((6, 8, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    bgr = np.clip(bgr, 0, 1)
    pha = np.zeros((h, w), np.float32)
    cv2.circle(pha, (w // 3 + shift, h // 2), min(h, w) // 4, 1.0, -1)
    pha = cv2.GaussianBlur(pha, (5, 5), 1.0)[:, :, None]
    src = pha * np.array([0.9, 0.2, 0.1], np.float32) + (1 - pha) * bgr
    return src, bgr, pha


def write_pair(folder, name, h, w, seed=0, src_ext='.png', bgr_ext='.png'):
    src, bgr, _ = scene(h, w, seed)
    src_path = os.path.join(folder, 'src', name + src_ext)
    bgr_path = os.path.join(folder, 'bgr', name + bgr_ext)
    write_image(src_path, src)
    write_image(bgr_path, bgr)
    return src_path, bgr_path


def write_video(path, frames, fps=12.5):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write((np.clip(frame, 0, 1)[:, :, ::-1] * 255 + 0.5).astype(np.uint8))
    writer.release()
    return path


def video_info(path):
    cap = cv2.VideoCapture(path)
    info = (cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_COUNT)),
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    cap.release()
    return info


def load(path):
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img


def run(args, weights, *extra):
    """predict.main with the common test options; returns the exit code."""
    return predict.main([*args, '--weights', weights, '--engine', 'dygraph', '--quiet', *extra])


def error_line(capsys):
    """The single 'error: ...' line printed to stderr."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith('error: ')
    return err[0]


def tree(folder):
    """Relative path -> bytes of every file under `folder` (to prove nothing changed)."""
    out = {}
    for base, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(base, name)
            with open(path, 'rb') as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


@pytest.fixture(scope='module')
def pair(tmp_path_factory):
    """One src/bgr pair of odd size 66x98 (H x W; neither a multiple of 4)."""
    folder = str(tmp_path_factory.mktemp('pair'))
    return write_pair(folder, 'odd', 66, 98)


# --------------------------------------------------------------------------- input forms and outputs

def test_pair_every_output_kind(pair, converted_weights, tmp_path):
    src, bgr = pair
    out = tmp_path / 'out'
    code = run(['--src', src, '--bgr', bgr, '--output-dir', str(out),
                '--output-types', 'pha', 'fgr', 'com', 'err', 'ref', 'new'], converted_weights)
    assert code == 0
    pha = load(out / 'pha' / 'odd.png')
    fgr = load(out / 'fgr' / 'odd.png')
    com = load(out / 'com' / 'odd.png')
    err = load(out / 'err' / 'odd.png')
    ref = load(out / 'ref' / 'odd.png')
    new = load(out / 'new' / 'odd.png')
    assert pha.shape == err.shape == ref.shape == (66, 98) and pha.dtype == np.uint8
    assert fgr.shape == new.shape == (66, 98, 3)
    assert com.shape == (66, 98, 4)
    assert np.array_equal(com[:, :, 3], pha)  # com is the foreground with the matte as alpha
    assert np.all(com[:, :, :3][pha == 0] == 0)
    assert set(np.unique(ref)) <= {0, 255}  # refined-patch map, nearest upsampling
    assert 0 < (ref == 255).mean() < 1
    # new = fgr * pha + green * (1 - pha), up to 8-bit rounding of the saved fgr and pha
    a = pha[:, :, None] / 255.0
    expected = (fgr[:, :, ::-1] / 255.0) * a + GREEN * (1 - a)
    assert np.abs(new[:, :, ::-1] / 255.0 - expected).max() < 2.5 / 255
    # the matte follows the disc: inside brighter than the background far from it
    _, _, true_pha = scene(66, 98)
    assert pha[true_pha[:, :, 0] > 0.99].mean() > pha[true_pha[:, :, 0] == 0].mean() + 50


def test_pth_weights_and_pdparams_agree(pair, reference_weights, converted_weights, tmp_path):
    src, bgr = pair
    for name, weights in (('pth', reference_weights), ('pdparams', converted_weights)):
        assert run(['--src', src, '--bgr', bgr, '--output-dir', str(tmp_path / name),
                    '--output-types', 'pha'], weights) == 0
    assert np.array_equal(load(tmp_path / 'pth' / 'pha' / 'odd.png'),
                          load(tmp_path / 'pdparams' / 'pha' / 'odd.png'))


def test_exported_model_round_trip(pair, converted_weights, tmp_path):
    """export -> predict --inference-model gives the dygraph result; --engine inference/auto too."""
    from utils.deploy.export import export_model
    src, bgr = pair
    export_dir = str(tmp_path / 'export')
    export_model(converted_weights, export_dir, refine_mode='sampling', refine_sample_pixels=80_000)
    assert predict.main(['--src', src, '--bgr', bgr, '--inference-model', export_dir, '--quiet',
                         '--output-dir', str(tmp_path / 'exported'), '--output-types', 'pha', 'fgr']) == 0
    assert run(['--src', src, '--bgr', bgr, '--output-dir', str(tmp_path / 'dygraph'),
                '--output-types', 'pha', 'fgr'], converted_weights) == 0
    for kind in ('pha', 'fgr'):
        exported = load(tmp_path / 'exported' / kind / 'odd.png').astype(int)
        dygraph = load(tmp_path / 'dygraph' / kind / 'odd.png').astype(int)
        assert np.abs(exported - dygraph).max() <= 1, kind  # 8-bit rounding of values within 1e-5
    for engine in ('inference', 'auto'):
        assert predict.main(['--src', src, '--bgr', bgr, '--weights', converted_weights, '--quiet',
                             '--engine', engine, '--output-dir', str(tmp_path / engine),
                             '--output-types', 'pha']) == 0
        assert np.abs(load(tmp_path / engine / 'pha' / 'odd.png').astype(int)
                      - load(tmp_path / 'dygraph' / 'pha' / 'odd.png').astype(int)).max() <= 1


def test_folders_matched_by_name(converted_weights, tmp_path):
    data = str(tmp_path / 'data')
    # names listed in a different order, extensions differ between src and bgr
    write_pair(data, 'b', 64, 96, seed=1, src_ext='.jpg', bgr_ext='.png')
    write_pair(data, 'a', 64, 96, seed=2, src_ext='.png', bgr_ext='.jpg')
    write_pair(data, 'c_odd', 66, 98, seed=3)
    write_image(os.path.join(data, 'bgr', 'unused.png'), np.zeros((8, 8, 3), np.float32))
    out = tmp_path / 'out'
    assert run(['--src', os.path.join(data, 'src'), '--bgr', os.path.join(data, 'bgr'),
                '--output-dir', str(out), '--batch-size', '2'], converted_weights) == 0
    for kind in ('pha', 'fgr', 'com', 'new'):  # the default output types
        assert sorted(os.listdir(out / kind)) == ['a.png', 'b.png', 'c_odd.png']
    assert load(out / 'pha' / 'c_odd.png').shape == (66, 98)
    # a and b went through the network as one batch; each alone must give the same matte
    single = tmp_path / 'single'
    assert run(['--src', os.path.join(data, 'src', 'a.png'), '--bgr', os.path.join(data, 'bgr', 'a.jpg'),
                '--output-dir', str(single), '--output-types', 'pha'], converted_weights) == 0
    diff = np.abs(load(single / 'pha' / 'a.png').astype(int) - load(out / 'pha' / 'a.png'))
    assert diff.max() <= 1


def test_folder_of_sources_with_one_plate(converted_weights, tmp_path):
    src, bgr, _ = scene(64, 96)
    for name in ('x', 'y'):
        write_image(str(tmp_path / 'src' / f'{name}.png'), src)
    write_image(str(tmp_path / 'plate.png'), bgr)
    out = tmp_path / 'out'
    assert run(['--src', str(tmp_path / 'src'), '--bgr', str(tmp_path / 'plate.png'),
                '--output-dir', str(out), '--output-types', 'pha'], converted_weights) == 0
    assert sorted(os.listdir(out / 'pha')) == ['x.png', 'y.png']


def test_gray_rgba_and_16bit_inputs_are_converted(converted_weights, tmp_path):
    src, bgr, _ = scene(64, 96)
    base = tmp_path / 'base'
    write_image(str(tmp_path / 'src.png'), src)
    write_image(str(tmp_path / 'bgr.png'), bgr)
    assert run(['--src', str(tmp_path / 'src.png'), '--bgr', str(tmp_path / 'bgr.png'),
                '--output-dir', str(base), '--output-types', 'pha'], converted_weights) == 0
    reference = load(base / 'pha' / 'src.png').astype(int)

    # 16-bit source, RGBA plate: same content, so (nearly) the same matte
    cv2.imwrite(str(tmp_path / 'src16.png'), (src[:, :, ::-1] * 65535 + 0.5).astype(np.uint16))
    rgba = np.dstack([(bgr[:, :, ::-1] * 255 + 0.5).astype(np.uint8), np.full((64, 96), 255, np.uint8)])
    cv2.imwrite(str(tmp_path / 'bgra.png'), rgba)
    out = tmp_path / 'deep'
    assert run(['--src', str(tmp_path / 'src16.png'), '--bgr', str(tmp_path / 'bgra.png'),
                '--output-dir', str(out), '--output-types', 'pha'], converted_weights) == 0
    assert np.abs(load(out / 'pha' / 'src16.png').astype(int) - reference).mean() < 1.0

    # grayscale source and plate: runs, full-size output
    gray = tmp_path / 'gray'
    cv2.imwrite(str(tmp_path / 'src_gray.png'), cv2.cvtColor((src * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY))
    cv2.imwrite(str(tmp_path / 'bgr_gray.png'), cv2.cvtColor((bgr * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY))
    assert run(['--src', str(tmp_path / 'src_gray.png'), '--bgr', str(tmp_path / 'bgr_gray.png'),
                '--output-dir', str(gray), '--output-types', 'pha', 'fgr'], converted_weights) == 0
    assert load(gray / 'fgr' / 'src_gray.png').shape == (64, 96, 3)


def test_target_background_colour_and_image(pair, converted_weights, tmp_path):
    src, bgr = pair
    out = tmp_path / 'blue'
    assert run(['--src', src, '--bgr', bgr, '--output-dir', str(out), '--output-types', 'pha', 'new',
                '--target-bgr', '#0000ff'], converted_weights) == 0
    pha, new = load(out / 'pha' / 'odd.png'), load(out / 'new' / 'odd.png')
    assert np.all(new[pha == 0] == [255, 0, 0])  # OpenCV order: blue

    target = np.zeros((30, 40, 3), np.float32)
    target[:, :, 1] = 1.0  # a small pure-green image, scaled up to cover the output
    write_image(str(tmp_path / 'target.png'), target)
    out = tmp_path / 'image'
    assert run(['--src', src, '--bgr', bgr, '--output-dir', str(out), '--output-types', 'pha', 'new',
                '--target-bgr', str(tmp_path / 'target.png')], converted_weights) == 0
    pha, new = load(out / 'pha' / 'odd.png'), load(out / 'new' / 'odd.png')
    assert new.shape == (66, 98, 3)
    assert np.all(new[pha == 0] == [0, 255, 0])


@pytest.fixture(scope='module')
def video(tmp_path_factory):
    """A 10-frame 66x98 video at 12.5 fps with a moving disc, its plate image and plate video."""
    folder = tmp_path_factory.mktemp('video')
    frames = [scene(66, 98, shift=3 * i)[0] for i in range(10)]
    _, bgr, _ = scene(66, 98)
    write_image(str(folder / 'plate.png'), bgr)
    return {'src': write_video(str(folder / 'src.mp4'), frames),
            'plate': str(folder / 'plate.png'),
            'plate_video': write_video(str(folder / 'plate.mp4'), [bgr] * 10),
            'folder': folder}


def test_video_with_background_image(video, converted_weights, tmp_path):
    out = tmp_path / 'out'
    assert run(['--src', video['src'], '--bgr', video['plate'], '--output-dir', str(out),
                '--output-types', 'pha', 'fgr', 'err', 'ref', 'new', '--batch-size', '4'],
               converted_weights) == 0
    assert sorted(os.listdir(out)) == [MANIFEST_FILE, 'err.mp4', 'fgr.mp4', 'new.mp4', 'pha.mp4', 'ref.mp4']
    for kind in ('pha', 'fgr', 'err', 'ref', 'new'):
        fps, count, width, height = video_info(str(out / f'{kind}.mp4'))
        assert (count, width, height) == (10, 98, 66)
        assert fps == pytest.approx(12.5)  # the input frame rate is kept


def test_video_with_background_video_as_png_sequence(video, converted_weights, tmp_path):
    out = tmp_path / 'out'
    assert run(['--src', video['src'], '--bgr', video['plate_video'], '--output-dir', str(out),
                '--video-output-type', 'png_sequence', '--output-types', 'pha', 'com'],
               converted_weights) == 0
    names = [f'{i:06d}.png' for i in range(10)]
    assert sorted(os.listdir(out / 'pha')) == names
    assert sorted(os.listdir(out / 'com')) == names
    assert load(out / 'com' / '000003.png').shape == (66, 98, 4)
    # the disc moves right from frame to frame; so does the matte's centre of mass
    centres = [np.average(np.arange(98), weights=load(out / 'pha' / n).astype(float).sum(0) + 1e-6)
               for n in (names[0], names[9])]
    assert centres[1] > centres[0]


def test_video_odd_size(video, converted_weights, tmp_path, capsys):
    """97x65 frames (--resize): exact size as PNGs; mp4 needs even sizes and is padded, with a warning."""
    seq = tmp_path / 'seq'
    assert run(['--src', video['src'], '--bgr', video['plate'], '--resize', '97', '65',
                '--output-dir', str(seq), '--video-output-type', 'png_sequence', '--output-types', 'pha'],
               converted_weights) == 0
    assert load(seq / 'pha' / '000000.png').shape == (65, 97)
    mp4 = tmp_path / 'mp4'
    assert run(['--src', video['src'], '--bgr', video['plate'], '--resize', '97', '65',
                '--output-dir', str(mp4), '--output-types', 'pha'], converted_weights) == 0
    assert video_info(str(mp4 / 'pha.mp4'))[1:] == (10, 98, 66)
    assert 'even width and height' in capsys.readouterr().err


def test_alignment_of_a_shifted_plate_lowers_the_error(reference_weights, tmp_path):
    """A plate rotated by 1.5 degrees and shifted: the aligned run must have a lower alpha
    error than the unaligned one, close to that of the true background."""
    src, plate, true_bg, pha = shifted_scene(128, 192)
    for name, img in (('src', src), ('plate', plate), ('true', true_bg)):
        write_image(str(tmp_path / f'{name}.png'), img)
    errors = {}
    for name, bgr, extra in (('unaligned', 'plate', []), ('aligned', 'plate', ['--preprocess-alignment']),
                             ('true', 'true', [])):
        out = tmp_path / name
        assert run(['--src', str(tmp_path / 'src.png'), '--bgr', str(tmp_path / f'{bgr}.png'),
                    '--output-dir', str(out), '--output-types', 'pha'], reference_weights, *extra) == 0
        errors[name] = np.abs(load(out / 'pha' / 'src.png') / 255.0 - pha[:, :, 0]).mean()
    assert errors['aligned'] < errors['unaligned'] - 0.01
    assert errors['aligned'] < errors['true'] + 0.01


def test_alignment_failure_warns_and_falls_back(pair, converted_weights, tmp_path, capsys):
    src, _ = pair
    flat = str(tmp_path / 'flat.png')
    write_image(flat, np.full((66, 98, 3), 0.5, np.float32))
    assert run(['--src', src, '--bgr', flat, '--output-dir', str(tmp_path / 'a'), '--output-types', 'pha',
                '--preprocess-alignment'], converted_weights) == 0
    err = capsys.readouterr().err
    assert 'warning:' in err and 'unaligned background' in err and src in err
    assert run(['--src', src, '--bgr', flat, '--output-dir', str(tmp_path / 'b'), '--output-types', 'pha'],
               converted_weights) == 0
    assert np.array_equal(load(tmp_path / 'a' / 'pha' / 'odd.png'), load(tmp_path / 'b' / 'pha' / 'odd.png'))


def test_model_options(pair, converted_weights, tmp_path):
    src, bgr = pair
    for i, options in enumerate([['--refine-mode', 'full'],
                                 ['--refine-mode', 'thresholding', '--refine-threshold', '0.3'],
                                 ['--refine-mode', 'sampling', '--refine-sample-pixels', '320',
                                  '--backbone-scale', '0.5', '--backbone', 'mobilenetv2',
                                  '--refine-kernel-size', '3']]):
        out = tmp_path / str(i)
        assert run(['--src', src, '--bgr', bgr, '--output-dir', str(out), '--output-types', 'ref'],
                   converted_weights, *options) == 0
        ref = load(out / 'ref' / 'odd.png')
        if i == 0:
            assert np.all(ref == 255)  # full: every patch refined
        if i == 2:
            assert (ref == 255).sum() <= 320 + 16 * 3  # 20 patches of 4x4 (cropped at the border)


# --------------------------------------------------------------------------- existing outputs

def test_existing_outputs_are_kept_unless_overwrite(pair, converted_weights, tmp_path, capsys):
    src, bgr = pair
    out = tmp_path / 'out'
    (out / 'pha').mkdir(parents=True)
    (out / 'pha' / 'odd.png').write_bytes(b'old')
    assert run(['--src', src, '--bgr', bgr, '--output-dir', str(out), '--output-types', 'pha'],
               converted_weights) == 1
    line = error_line(capsys)
    assert os.path.join(str(out), 'pha', 'odd.png') in line and '--overwrite' in line
    assert (out / 'pha' / 'odd.png').read_bytes() == b'old'
    assert run(['--src', src, '--bgr', bgr, '--output-dir', str(out), '--output-types', 'pha',
                '--overwrite'], converted_weights) == 0
    assert load(out / 'pha' / 'odd.png').shape == (66, 98)
    assert sorted(os.listdir(out)) == [MANIFEST_FILE, 'pha']  # no staging folder left behind


def test_failed_run_leaves_old_outputs_untouched(converted_weights, tmp_path, capsys):
    data = str(tmp_path / 'data')
    write_pair(data, 'a', 64, 96)
    write_pair(data, 'b', 64, 96)
    out = tmp_path / 'out'
    assert run(['--src', os.path.join(data, 'src'), '--bgr', os.path.join(data, 'bgr'),
                '--output-dir', str(out), '--output-types', 'pha'], converted_weights) == 0
    before = tree(out)
    corrupt = os.path.join(data, 'src', 'b.png')
    with open(corrupt, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n this is not an image')
    # with --overwrite a successful run would replace a.png and b.png; this one fails on b
    assert run(['--src', os.path.join(data, 'src'), '--bgr', os.path.join(data, 'bgr'),
                '--output-dir', str(out), '--output-types', 'pha', '--overwrite'], converted_weights) == 1
    assert corrupt in error_line(capsys)
    assert tree(out) == before


def test_failed_video_run_writes_nothing(video, converted_weights, tmp_path, capsys):
    short = write_video(str(tmp_path / 'short.mp4'), [scene(66, 98)[1]] * 4)
    out = tmp_path / 'out'
    assert run(['--src', video['src'], '--bgr', short, '--output-dir', str(out)], converted_weights) == 1
    line = error_line(capsys)
    assert short in line and 'background video' in line
    assert not out.exists()


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize('case', ['missing', 'corrupt', 'empty_folder', 'no_matching_bgr'])
def test_bad_images(case, converted_weights, tmp_path, capsys):
    src, bgr = write_pair(str(tmp_path), 'a', 64, 96)
    if case == 'missing':
        src = str(tmp_path / 'nope.png')
        named = src
    elif case == 'corrupt':
        with open(bgr, 'wb') as f:
            f.write(os.urandom(300))
        named = bgr
    elif case == 'empty_folder':
        src = str(tmp_path / 'empty')
        os.makedirs(src)
        bgr = str(tmp_path / 'bgr')
        named = src
    else:
        os.rename(bgr, str(tmp_path / 'bgr' / 'other.png'))
        src, bgr = str(tmp_path / 'src'), str(tmp_path / 'bgr')
        named = os.path.join(src, 'a.png')
    out = tmp_path / 'out'
    assert run(['--src', src, '--bgr', bgr, '--output-dir', str(out)], converted_weights) == 1
    assert named in error_line(capsys)
    assert not out.exists()


def test_unreadable_video(converted_weights, tmp_path, capsys):
    bad = tmp_path / 'broken.mp4'
    bad.write_bytes(os.urandom(2000))
    plate = str(tmp_path / 'plate.png')
    write_image(plate, np.zeros((64, 96, 3), np.float32))
    assert run(['--src', str(bad), '--bgr', plate, '--output-dir', str(tmp_path / 'out')], converted_weights) == 1
    line = error_line(capsys)
    assert str(bad) in line and 'video' in line
    assert not (tmp_path / 'out').exists()


def test_sizes_differ_error_or_resize(converted_weights, tmp_path, capsys):
    src, _ = write_pair(str(tmp_path), 'a', 64, 96)
    bgr = str(tmp_path / 'big_plate.png')
    write_image(bgr, scene(128, 192)[1])
    assert run(['--src', src, '--bgr', bgr, '--output-dir', str(tmp_path / 'x')], converted_weights) == 1
    line = error_line(capsys)
    assert bgr in line and '--resize-bgr' in line and '192x128' in line
    out = tmp_path / 'y'
    assert run(['--src', src, '--bgr', bgr, '--output-dir', str(out), '--resize-bgr',
                '--output-types', 'pha'], converted_weights) == 0
    assert load(out / 'pha' / 'a.png').shape == (64, 96)


def test_wrong_backbone_weights(pair, tmp_path, capsys):
    import paddle
    from model import MattingRefine
    weights = str(tmp_path / 'resnet50.pdparams')
    paddle.save(MattingRefine('resnet50').state_dict(), weights)
    src, bgr = pair
    assert run(['--src', src, '--bgr', bgr, '--output-dir', str(tmp_path / 'out'),
                '--backbone', 'mobilenetv2'], weights) == 1
    line = error_line(capsys)
    assert weights in line and 'resnet50' in line and '--backbone' in line
    assert not (tmp_path / 'out').exists()


def test_weights_that_are_not_a_checkpoint(pair, tmp_path, capsys):
    weights = tmp_path / 'junk.pdparams'
    weights.write_bytes(b'not a checkpoint')
    src, bgr = pair
    assert run(['--src', src, '--bgr', bgr, '--output-dir', str(tmp_path / 'out')], str(weights)) == 1
    assert str(weights) in error_line(capsys)


def test_unwritable_output_dir(pair, converted_weights, tmp_path, capsys):
    src, bgr = pair
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    out = str(blocker / 'out')  # a folder below a regular file cannot be created (even by root)
    assert run(['--src', src, '--bgr', bgr, '--output-dir', out], converted_weights) == 1
    line = error_line(capsys)
    assert out in line and '--output-dir' in line


@pytest.mark.parametrize('args, expected', [
    (['--precision', 'float16'], '--device gpu'),
    (['--src', 'x.png'], '--bgr'),
    (['--model-type', 'mattingbase'], 'runs MattingRefine'),
    (['--batch-size', '0'], '--batch-size'),
])
def test_usage_errors_exit_2(args, expected, pair, video, converted_weights, tmp_path, capsys):
    if args[0] == '--src':
        full = args
    else:
        full = ['--src', pair[0], '--bgr', pair[1], *args]
    assert run([*full, '--output-dir', str(tmp_path / 'out')], converted_weights) == 2
    assert expected in error_line(capsys)


def test_no_weights_explains_how_to_get_them(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(predict, 'DEFAULT_WEIGHTS', str(tmp_path / 'missing.pdparams'))
    assert predict.main([]) == 2
    err = capsys.readouterr().err
    assert 'python -m utils.convert_weights' in err and '--weights' in err


def test_default_weights_are_used_when_present(monkeypatch, pair, converted_weights, tmp_path):
    monkeypatch.setattr(predict, 'DEFAULT_WEIGHTS', converted_weights)
    out = tmp_path / 'out'
    assert predict.main(['--src', pair[0], '--bgr', pair[1], '--output-dir', str(out), '--quiet',
                         '--engine', 'dygraph', '--output-types', 'pha']) == 0
    assert (out / 'pha' / 'odd.png').is_file()


# --------------------------------------------------------------------------- end to end

def _python(*args, cwd):
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    return subprocess.run([sys.executable, os.path.join(ROOT, 'predict.py'), *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


def test_command_line_samples_and_error(reference_weights, tmp_path):
    """`python predict.py` from another folder: the shipped samples into ./image, then a bad
    input: exit code 1 and one 'error:' line, no traceback."""
    result = _python('--weights', reference_weights, '--output-types', 'pha', '--resize', '128', '72',
                     '--batch-size', '1', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    samples = sorted(os.path.splitext(n)[0] for n in os.listdir(os.path.join(ROOT, 'dataset', 'samples', 'src')))
    assert sorted(n[:-4] for n in os.listdir(tmp_path / 'image' / 'pha')) == samples
    assert 'written to image' in result.stdout

    result = _python('--src', 'missing.jpg', '--bgr', 'plate.jpg', '--weights', reference_weights,
                     cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == 'error: missing.jpg: no such file or folder; check --src'

    result = _python('--src', 'x.png', '--bgr', 'y.png', '--refine-mode', 'bogus', cwd=tmp_path)
    assert result.returncode == 2 and 'invalid choice' in result.stderr


def test_shipped_samples():
    """dataset/samples: src/bgr pairs of the same names and sizes, one of an odd size."""
    folder = os.path.join(ROOT, 'dataset', 'samples')
    names = sorted(os.listdir(os.path.join(folder, 'src')))
    assert len(names) >= 3 and names == sorted(os.listdir(os.path.join(folder, 'bgr')))
    sizes = []
    for name in names:
        src = read_image(os.path.join(folder, 'src', name))
        assert src.shape == read_image(os.path.join(folder, 'bgr', name)).shape
        assert os.path.getsize(os.path.join(folder, 'src', name)) < 1_000_000
        sizes.append(src.shape[:2])
    assert any(h % 4 or w % 4 for h, w in sizes)


def test_shipped_samples_are_what_utils_samples_writes(tmp_path):
    """`python -m utils.samples` regenerates dataset/samples (src, bgr and the true alpha), so a
    change to the scene generator cannot leave the shipped samples stale. JPEG encoders of other
    OpenCV builds may round differently: the decoded pixels must agree to a grey level."""
    from utils.samples import make_samples
    shipped = os.path.join(ROOT, 'dataset', 'samples')
    written = make_samples(str(tmp_path))
    assert sorted(os.path.relpath(p, tmp_path) for p in written) == sorted(
        os.path.join(kind, name) for kind in ('src', 'bgr', 'pha') for name in os.listdir(os.path.join(shipped, kind)))
    for path in written:
        new = read_image(path)
        old = read_image(os.path.join(shipped, os.path.relpath(path, tmp_path)))
        assert new.shape == old.shape, path
        assert np.abs(new - old).mean() < 1 / 255, path


# --------------------------------------------------------------------------- reruns and interruptions

def test_rerun_replaces_its_own_outputs_but_not_other_files(pair, converted_weights, tmp_path, capsys):
    """The same command works every time; a file predict.py did not write (or that was changed
    since) still needs --overwrite."""
    src, bgr = pair
    out = tmp_path / 'out'
    args = ['--src', src, '--bgr', bgr, '--output-dir', str(out), '--output-types', 'pha', 'com']
    assert run(args, converted_weights) == 0
    (out / 'pha' / 'mine.png').write_bytes(b'not an output of this run')
    assert run(args, converted_weights) == 0
    assert (out / 'pha' / 'mine.png').read_bytes() == b'not an output of this run'
    assert sorted(os.listdir(out)) == [MANIFEST_FILE, 'com', 'pha']
    # the user replaces an output with a file of their own: no longer ours
    (out / 'com' / 'odd.png').write_bytes(b'edited by hand')
    capsys.readouterr()
    assert run(args, converted_weights) == 1
    line = error_line(capsys)
    assert os.path.join(str(out), 'com', 'odd.png') in line and '--overwrite' in line
    assert (out / 'com' / 'odd.png').read_bytes() == b'edited by hand'
    assert run([*args, '--overwrite'], converted_weights) == 0
    assert load(out / 'com' / 'odd.png').shape == (66, 98, 4)
    assert run(args, converted_weights) == 0  # and ours again


def _dead_pid():
    done = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_stale_partial_folders_of_dead_runs_are_removed(pair, converted_weights, tmp_path):
    """A run killed with SIGKILL leaves its staging folder; the next run removes it (its process
    is gone) but not that of a run still going."""
    src, bgr = pair
    out = tmp_path / 'out'
    dead = out / f'{PARTIAL_PREFIX}{_dead_pid()}-abc'
    alive = out / f'{PARTIAL_PREFIX}{os.getppid()}-def'
    for folder in (dead, alive):
        (folder / 'pha').mkdir(parents=True)
        (folder / 'pha' / 'odd.png').write_bytes(b'half')
    assert run(['--src', src, '--bgr', bgr, '--output-dir', str(out), '--output-types', 'pha'],
               converted_weights) == 0
    assert not dead.exists() and alive.exists()


def test_sigterm_removes_the_staging_folder(converted_weights, tmp_path):
    """SIGTERM during a video run: exit 143, no output and no hidden folder left."""
    frames = [scene(66, 98, shift=i % 30)[0] for i in range(300)]
    src = write_video(str(tmp_path / 'long.mp4'), frames)
    write_image(str(tmp_path / 'plate.png'), scene(66, 98)[1])
    out = tmp_path / 'out'
    out.mkdir()
    process = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'predict.py'), '--src', src, '--bgr', str(tmp_path / 'plate.png'),
         '--weights', converted_weights, '--engine', 'dygraph', '--batch-size', '1', '--quiet',
         '--output-types', 'pha', '--output-dir', str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # the staging folder appears once the run has started
            if any(n.startswith(PARTIAL_PREFIX) for n in os.listdir(out)) or process.poll() is not None:
                break
            time.sleep(0.05)
        time.sleep(1.0)
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert 'terminated; no outputs were written' in err
    assert os.listdir(out) == []


# --------------------------------------------------------------------------- official option names

def test_official_inference_images_command(reference_weights, tmp_path):
    """The official README's inference_images.py command line, option for option."""
    data = str(tmp_path / 'data')
    write_pair(data, 'a', 64, 96)
    out = tmp_path / 'out'
    assert predict.main([
        '--model-type', 'mattingrefine', '--model-backbone', 'mobilenetv2', '--model-backbone-scale', '0.25',
        '--model-refine-mode', 'sampling', '--model-refine-sample-pixels', '80000',
        '--model-checkpoint', reference_weights, '--images-src', os.path.join(data, 'src'),
        '--images-bgr', os.path.join(data, 'bgr'), '--output-dir', str(out),
        '--output-types', 'com', 'fgr', 'pha', '--num-workers', '2', '--device', 'cpu', '--quiet']) == 0
    assert load(out / 'com' / 'a.png').shape == (64, 96, 4)
    assert load(out / 'pha' / 'a.png').shape == (64, 96)


def test_official_inference_video_options(video, converted_weights, tmp_path):
    """inference_video.py's --video-* options, --output-format image_sequences and the
    singular --output-type of the official README."""
    out = tmp_path / 'out'
    assert predict.main([
        '--model-type', 'mattingrefine', '--model-checkpoint', converted_weights, '--engine', 'dygraph',
        '--video-src', video['src'], '--video-bgr', video['plate'], '--video-target-bgr', '255,0,0',
        '--video-resize', '96', '64', '--output-format', 'image_sequences', '--output-type', 'pha', 'new',
        '--output-dir', str(out), '--quiet']) == 0
    assert sorted(os.listdir(out / 'pha'))[-1] == '000009.png'
    assert load(out / 'new' / '000000.png').shape == (64, 96, 3)


# --------------------------------------------------------------------------- bad input

def test_tiny_image_is_one_clear_error(converted_weights, tmp_path, capsys):
    """7x9 would give an all-zero matte: the base network sees less than one feature cell."""
    src, bgr = write_pair(str(tmp_path), 'tiny', 7, 9)
    assert run(['--src', src, '--bgr', bgr, '--output-dir', str(tmp_path / 'out')], converted_weights) == 1
    line = error_line(capsys)
    assert src in line and 'too small' in line and 'at least 64 pixels' in line
    assert not (tmp_path / 'out').exists()
    # the limit follows the backbone scale
    assert run(['--src', src, '--bgr', bgr, '--output-dir', str(tmp_path / 'out'),
                '--backbone-scale', '0.5'], converted_weights) == 1
    assert 'at least 32 pixels' in error_line(capsys)


@pytest.mark.parametrize('same', ['file', 'folder'])
def test_same_src_and_bgr_is_one_clear_error(same, converted_weights, tmp_path, capsys):
    src, _ = write_pair(str(tmp_path), 'a', 64, 96)
    path = src if same == 'file' else os.path.dirname(src)
    assert run(['--src', path, '--bgr', path, '--output-dir', str(tmp_path / 'out')], converted_weights) == 2
    line = error_line(capsys)
    assert path in line and 'both --src and --bgr' in line


def test_transparent_rgba_source_warns_that_alpha_is_ignored(converted_weights, tmp_path, capsys):
    src, bgr, _ = scene(64, 96)
    bgra = (np.dstack([src[:, :, ::-1], np.ones((64, 96), np.float32)]) * 255 + 0.5).astype(np.uint8)
    cv2.imwrite(str(tmp_path / 'opaque.png'), bgra)
    bgra[:10, :10, 3] = 0
    cv2.imwrite(str(tmp_path / 'cutout.png'), bgra)
    write_image(str(tmp_path / 'bgr.png'), bgr)
    for name, warned in (('opaque.png', False), ('cutout.png', True)):
        assert run(['--src', str(tmp_path / name), '--bgr', str(tmp_path / 'bgr.png'),
                    '--output-dir', str(tmp_path / 'out'), '--output-types', 'pha'], converted_weights) == 0
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        if warned:
            assert len(err) == 1 and err[0].startswith('warning: ') and 'alpha channel is ignored' in err[0]
            assert str(tmp_path / name) in err[0]
        else:
            assert err == []


# --------------------------------------------------------------------------- video files

def _ffprobe(path):
    import imageio_ffmpeg
    return subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), '-hide_banner', '-i', str(path)],
                          capture_output=True, text=True).stderr


def test_video_outputs_are_h264_with_the_source_audio(video, converted_weights, tmp_path):
    """com/new keep the source's audio; com is VP9 with alpha in .webm; pha is H.264 without audio."""
    imageio_ffmpeg = pytest.importorskip('imageio_ffmpeg')
    src = str(tmp_path / 'with_audio.mp4')
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), '-y', '-loglevel', 'error', '-i', video['src'],
                    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-c:v', 'copy',
                    '-c:a', 'aac', '-shortest', src], check=True)
    out = tmp_path / 'out'
    assert run(['--src', src, '--bgr', video['plate'], '--output-dir', str(out),
                '--output-types', 'pha', 'new', 'com'], converted_weights) == 0
    assert sorted(os.listdir(out)) == [MANIFEST_FILE, 'com.webm', 'new.mp4', 'pha.mp4']
    new, pha, com = (_ffprobe(out / name) for name in ('new.mp4', 'pha.mp4', 'com.webm'))
    assert 'Video: h264' in new and 'Audio: aac' in new, new
    assert 'Video: h264' in pha and 'Audio:' not in pha, pha
    assert 'Video: vp9' in com and 'alpha_mode' in com and 'Audio: opus' in com, com
    assert video_info(str(out / 'new.mp4'))[1:] == (10, 98, 66)
    # the matte is in the webm's alpha (libvpx's decoder keeps it)
    reader = imageio_ffmpeg.read_frames(str(out / 'com.webm'), pix_fmt='rgba', bpp=4,
                                        input_params=['-c:v', 'libvpx-vp9'])
    next(reader)
    alpha = np.frombuffer(next(reader), np.uint8).reshape(66, 98, 4)[..., 3]
    expected = cv2.VideoCapture(str(out / 'pha.mp4')).read()[1][..., 0]
    assert alpha.max() > 200 and alpha.min() < 50
    assert np.abs(alpha.astype(int) - expected.astype(int)).mean() < 8


def test_folder_of_videos(video, converted_weights, tmp_path, capsys):
    """Each clip into its own folder, with the plate of its name (image or video), or one plate."""
    clips, plates = tmp_path / 'clips', tmp_path / 'plates'
    clips.mkdir()
    plates.mkdir()
    frames = [scene(66, 98, shift=2 * i)[0] for i in range(4)]
    write_video(str(clips / 'one.mp4'), frames)
    write_video(str(clips / 'two.avi'), frames[:3])
    shutil.copy(video['plate'], plates / 'one.png')
    shutil.copy(video['plate_video'], plates / 'two.mp4')
    out = tmp_path / 'out'
    assert run(['--src', str(clips), '--bgr', str(plates), '--output-dir', str(out),
                '--output-types', 'pha', 'new'], converted_weights) == 0
    assert sorted(os.listdir(out)) == [MANIFEST_FILE, 'one', 'two']
    assert video_info(str(out / 'one' / 'pha.mp4'))[1:] == (4, 98, 66)
    assert video_info(str(out / 'two' / 'new.mp4'))[1:] == (3, 98, 66)
    one = tmp_path / 'one_plate'
    assert run(['--src', str(clips), '--bgr', video['plate'], '--output-dir', str(one),
                '--video-output-type', 'png_sequence', '--output-types', 'pha'], converted_weights) == 0
    assert sorted(os.listdir(one / 'two' / 'pha')) == ['000000.png', '000001.png', '000002.png']
    capsys.readouterr()
    os.remove(plates / 'two.mp4')
    assert run(['--src', str(clips), '--bgr', str(plates), '--output-dir', str(tmp_path / 'x')],
               converted_weights) == 1
    assert 'no background of the same name' in error_line(capsys)
    write_video(str(clips / 'one.mov'), frames[:2])
    assert run(['--src', str(clips), '--bgr', video['plate'], '--output-dir', str(tmp_path / 'x')],
               converted_weights) == 1
    assert 'collide' in error_line(capsys)
