"""The web app's handlers without a browser (utils/webapp.py, app.py): results, bad uploads,
the model cache and the one-at-a-time engine thread. Model: the default checkpoint, dygraph."""
import os
import threading
import time

import cv2
import numpy as np
import pytest

import app
from test_predict import scene, write_video
from utils.image_io import read_image, write_image
from utils.deploy.engine import EngineThread
from utils.webapp import AppInputError, ModelCache, matte_image, matte_video

LABEL = 'default checkpoint'


@pytest.fixture(scope='module')
def cache():
    return ModelCache({LABEL: app.DEFAULT_WEIGHTS}, engine='dygraph')


@pytest.fixture(scope='module')
def uploads(tmp_path_factory):
    """Paths: a 66x98 photo and plate, a plate of another size, a corrupt image, a 6-frame
    video and an unreadable one."""
    folder = tmp_path_factory.mktemp('uploads')
    src, bgr, _ = scene(66, 98, seed=1)
    paths = {'src': str(folder / 'src.png'), 'bgr': str(folder / 'bgr.jpg'),
             'small': str(folder / 'small.png'), 'corrupt': str(folder / 'corrupt.png'),
             'bad_video': str(folder / 'bad.mp4')}
    write_image(paths['src'], src)
    write_image(paths['bgr'], bgr)
    write_image(paths['small'], bgr[:40, :60])
    with open(paths['corrupt'], 'wb') as f:
        f.write(b'\x89PNG not really')
    with open(paths['bad_video'], 'wb') as f:
        f.write(b'not a video')
    _, vbgr, _ = scene(64, 96, seed=2)
    paths['video'] = write_video(str(folder / 'clip.mp4'),
                                 [scene(64, 96, seed=2, shift=i)[0] for i in range(6)], fps=10)
    paths['vbgr'] = str(folder / 'vbgr.png')
    write_image(paths['vbgr'], vbgr)
    return paths


def test_photo_results_and_cache(cache, uploads, tmp_path):
    result = matte_image(cache, uploads['src'], uploads['bgr'], LABEL, 0.25, 'sampling', '#ff0000',
                         None, str(tmp_path))
    assert result['pha'].shape == (66, 98, 1)
    assert 0 <= result['pha'].min() and result['pha'].max() <= 1
    assert result['pha'].max() > 0.5 and result['pha'].min() < 0.1  # subject and background
    for kind in ('fgr', 'new', 'ref'):
        assert result[kind].shape == (66, 98, 3)
    # the composite is the red background where alpha is 0
    background = result['pha'][..., 0] < 0.01
    assert np.allclose(result['new'][background], [1, 0, 0], atol=0.02)
    names = sorted(os.path.basename(f) for f in result['files'])
    assert names == ['com.png', 'fgr.png', 'new.png', 'pha.png', 'ref.png']
    assert read_image(os.path.join(str(tmp_path), 'com.png'), 'rgba').shape == (66, 98, 4)
    assert '98x66' in result['summary'] and result['timings']['inference'] > 0
    again = matte_image(cache, uploads['src'], uploads['bgr'], LABEL, 0.25, 'sampling', None, None,
                        str(tmp_path / 'again'))
    assert again['timings']['load'] == 0 and 'model cached' in again['summary']
    assert np.array_equal(again['pha'], result['pha'])


def test_background_image_and_browser_colour(cache, uploads, tmp_path):
    result = matte_image(cache, uploads['src'], uploads['bgr'], LABEL, 0.25, 'full',
                         'rgba(0, 0, 255, 1)', None, str(tmp_path / 'a'))
    background = result['pha'][..., 0] < 0.01
    assert np.allclose(result['new'][background], [0, 0, 1], atol=0.02)
    with_image = matte_image(cache, uploads['src'], uploads['bgr'], LABEL, 0.25, 'full', None,
                             uploads['small'], str(tmp_path / 'b'))
    assert with_image['new'].shape == (66, 98, 3)


@pytest.mark.parametrize('case, expected', [
    ('sizes', 'the photo is 98x66 but the plate is 60x40; upload a plate of the same size'),
    ('corrupt', 'the plate (corrupt.png) is not a readable image; upload a PNG or JPEG'),
    ('missing', 'no photo uploaded'),
    ('colour', "colour 'greenish' not understood"),
    ('target', 'the new background (corrupt.png) is not a readable image'),
    ('scale', 'backbone scale 0.3 is not offered'),
    ('weights', "unknown weights 'other'"),
])
def test_bad_photo_uploads(case, expected, cache, uploads, tmp_path):
    args = dict(src=uploads['src'], bgr=uploads['bgr'], label=LABEL, scale=0.25, color=None, target=None)
    args.update({'sizes': {'bgr': uploads['small']}, 'corrupt': {'bgr': uploads['corrupt']},
                 'missing': {'src': None}, 'colour': {'color': 'greenish'},
                 'target': {'target': uploads['corrupt']}, 'scale': {'scale': 0.3},
                 'weights': {'label': 'other'}}[case])
    with pytest.raises(AppInputError) as error:
        matte_image(cache, args['src'], args['bgr'], args['label'], args['scale'], 'sampling',
                    args['color'], args['target'], str(tmp_path))
    assert expected in str(error.value)
    assert '\n' not in str(error.value)


def test_video_results(cache, uploads, tmp_path):
    seen = []
    result = matte_video(cache, uploads['video'], uploads['vbgr'], LABEL, 0.25, 'sampling', None, None,
                         str(tmp_path), progress=lambda fraction, desc: seen.append(fraction))
    assert result['frames'] == 6 and len(seen) == 6
    for kind in ('pha', 'fgr', 'new'):
        path = result['videos'][kind]
        assert path.endswith('.webm') and os.path.isfile(path)
        capture = cv2.VideoCapture(path)
        frames = 0
        while capture.read()[0]:
            frames += 1
        assert frames == 6 and capture.get(cv2.CAP_PROP_FRAME_WIDTH) == 96
        capture.release()
    assert result['ref'].shape == (64, 96, 3)
    assert not [f for f in os.listdir(tmp_path) if f.startswith('.tmp')]


@pytest.mark.parametrize('case, expected', [
    ('too_long', 'the video has 6 frames; the app takes at most 5 (0.5 s at its 10 fps)'),
    ('unreadable', 'the video (bad.mp4) is not readable'),
    ('sizes', 'the video is 96x64 but the plate is 98x66'),
    ('missing', 'no video uploaded'),
])
def test_bad_video_uploads(case, expected, cache, uploads, tmp_path):
    video = {'unreadable': uploads['bad_video'], 'missing': None}.get(case, uploads['video'])
    plate = uploads['src'] if case == 'sizes' else uploads['vbgr']
    with pytest.raises(AppInputError) as error:
        matte_video(cache, video, plate, LABEL, 0.25, 'sampling', None, None, str(tmp_path),
                    max_frames=5 if case == 'too_long' else 150)
    assert expected in str(error.value)
    assert os.listdir(tmp_path) == []  # no partial outputs


def test_engine_calls_run_one_at_a_time_on_one_thread():
    calls, active = [], []

    def engine(src, bgr):
        active.append(1)
        calls.append((threading.get_ident(), len(active)))
        time.sleep(0.02)
        active.pop()
        return src

    engine_thread = EngineThread()
    shared = engine_thread.bind(engine)
    threads = [threading.Thread(target=shared, args=(i, i)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine_thread.shutdown()
    assert len(calls) == 6
    assert len({ident for ident, _ in calls}) == 1       # one thread
    assert calls[0][0] not in {t.ident for t in threads}  # the engine thread, not a caller's
    assert max(depth for _, depth in calls) == 1          # never two at once


def test_page_errors_are_one_line_messages():
    gr = pytest.importorskip('gradio', reason='gradio not installed: pip install -r requirements-app.txt')
    from utils.webapp import _guarded

    def bad_upload():
        raise AppInputError('the plate is wrong; upload another')

    def bug():
        raise KeyError('x')

    with pytest.raises(gr.Error, match='the plate is wrong; upload another'):
        _guarded(bad_upload)()
    with pytest.raises(gr.Error) as error:
        _guarded(bug)()
    assert 'matting failed (KeyError' in str(error.value) and 'Traceback' not in str(error.value)


def test_app_shares_one_queue(cache):
    pytest.importorskip('gradio', reason='gradio not installed: pip install -r requirements-app.txt')
    from utils.webapp import build_app, remove_work_dir
    demo = build_app(cache)
    try:
        dependencies = [d for d in demo.fns.values() if d.name in ('photo', 'video')]
        assert sorted(d.name for d in dependencies) == ['photo', 'video']
        assert {d.concurrency_id for d in dependencies} == {'model'}
        assert {d.concurrency_limit for d in dependencies} == {1}
    finally:
        remove_work_dir(demo)


def test_app_missing_weights(tmp_path, capsys):
    assert app.main(['--weights', str(tmp_path / 'none.pdparams'), '--no-preload']) == 1
    assert 'no such weights file' in capsys.readouterr().err
