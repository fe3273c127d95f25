"""Tests of predict.py: every input form and output kind, odd sizes, alignment, bad inputs.

Most tests call `predict.main([...])` in-process on small generated images (64x96 and the
odd 66x98, sampling mode, dygraph engine); two run `python predict.py` as a subprocess to
check exit codes and messages end to end. Weights: the official-format reference checkpoint
(.pth, converted on the fly) and its .pdparams conversion (conftest fixtures).
"""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import predict
from test_alignment import shifted_scene
from utils.image_io import read_image, write_image

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
    assert sorted(os.listdir(out)) == ['err.mp4', 'fgr.mp4', 'new.mp4', 'pha.mp4', 'ref.mp4']
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
    assert sorted(os.listdir(out)) == ['pha']  # no staging folder left behind


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
    (['--output-types', 'com'], 'png_sequence'),  # with a video source, below
    (['--batch-size', '0'], '--batch-size'),
])
def test_usage_errors_exit_2(args, expected, pair, video, converted_weights, tmp_path, capsys):
    if args[0] == '--src':
        full = args
    elif args[0] == '--output-types':
        full = ['--src', video['src'], '--bgr', video['plate'], *args]
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
