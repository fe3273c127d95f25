"""The web app in a real browser: `python app.py` on a loopback port, driven by headless Chromium.

Uploads a shipped sample and its plate, waits for the result, checks the images the page
shows (size, alpha range, not blank), uploads a plate of another size and checks the message,
mattes a short generated video and checks that the browser plays the result (WebM), and saves
a screenshot to log/app_browser.png (the README's picture is a copy of it).
Skips, saying why, without gradio / selenium (pip install -r requirements-app.txt) or
without Chromium and its driver (Debian: apt-get install chromium chromium-driver).
"""
import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import cv2
import numpy as np
import pytest

from conftest import ROOT

pytest.importorskip('gradio', reason='gradio not installed: pip install -r requirements-app.txt')
pytest.importorskip('selenium', reason='selenium not installed: pip install -r requirements-app.txt')

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = next(filter(None, map(shutil.which, ('chromium', 'chromium-browser', 'google-chrome'))), None)
CHROMEDRIVER = shutil.which('chromedriver')
SAMPLE = os.path.join(ROOT, 'dataset', 'samples')
SRC = os.path.join(SAMPLE, 'src', 'studio_odd_size.png')   # 510x382
BGR = os.path.join(SAMPLE, 'bgr', 'studio_odd_size.png')
OTHER_BGR = os.path.join(SAMPLE, 'bgr', 'indoor.jpg')      # 1280x720
SCREENSHOT = os.path.join(ROOT, 'log', 'app_browser.png')
# Chromium flags that work in containers without a display, a GPU or network access.
CHROMIUM_FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync',
                  '--disable-dev-shm-usage', '--window-size=1500,1300')
START_TIMEOUT = 300  # the first start exports the model for Paddle Inference
RESULT_TIMEOUT = 180

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason='no Chromium / chromedriver found (Debian: apt-get install chromium chromium-driver)')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def app_url(tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp('app') / 'app.log', 'w+')
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED='False', PYTHONUNBUFFERED='1')
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, 'app.py'), '--host', '127.0.0.1',
                                '--port', str(port)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               env=env)
    url = f'http://127.0.0.1:{port}/'
    deadline = time.time() + START_TIMEOUT
    try:
        while True:
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f'app.py exited with {process.returncode}:\n{log.read()[-3000:]}')
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if time.time() > deadline:
                    pytest.fail(f'app.py did not answer on {url} within {START_TIMEOUT} s')
                time.sleep(1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope='module')
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix='chromium-profile-')
    options.add_argument(f'--user-data-dir={profile}')
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def upload(driver, elem_id, path):
    field = driver.find_element(By.CSS_SELECTOR, f'#{elem_id} input[type=file]')
    field.send_keys(path)
    name = os.path.basename(path)
    # the download link appears once the file is on the server
    WebDriverWait(driver, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f'#{elem_id} a[download="{name}"]'),
        f'upload of {name} to #{elem_id}')


def shown_image(driver, elem_id, mode=cv2.IMREAD_UNCHANGED):
    """The image an output component shows, fetched as the browser would (None if none yet)."""
    images = driver.find_elements(By.CSS_SELECTOR, f'#{elem_id} img')
    src = images[0].get_attribute('src') if images else None
    if not src:
        return None
    if src.startswith('data:'):
        data = base64.b64decode(src.split(',', 1)[1])
    else:
        with urllib.request.urlopen(src, timeout=30) as response:
            data = response.read()
    return cv2.imdecode(np.frombuffer(data, np.uint8), mode)


def submit_photo(driver, url, src, bgr):
    """Open the page, upload a photo and a plate, press the button."""
    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#src input[type=file]'))
    upload(driver, 'src', src)
    upload(driver, 'bgr', bgr)
    driver.find_element(By.ID, 'run').click()


def test_photo_in_the_browser(app_url, browser):
    submit_photo(browser, app_url, SRC, BGR)
    WebDriverWait(browser, RESULT_TIMEOUT).until(
        lambda d: all(shown_image(d, k) is not None for k in ('pha', 'new', 'ref')), 'the results')
    pha = shown_image(browser, 'pha', cv2.IMREAD_GRAYSCALE)
    new = shown_image(browser, 'new', cv2.IMREAD_COLOR)
    ref = shown_image(browser, 'ref', cv2.IMREAD_COLOR)
    for image in (pha, new, ref):
        assert image.shape[:2] == (382, 510)  # the photo's own size, odd as it is
    assert pha.min() <= 5 and pha.max() >= 250  # background and subject both present
    assert 0.02 < (pha > 127).mean() < 0.9      # a subject, not an all-black/white matte
    assert new.std() > 10                        # not blank
    status = browser.find_element(By.ID, 'status').text
    assert '510x382' in status and 'inference' in status and 'ms' in status
    assert len(browser.find_elements(By.CSS_SELECTOR, '#files a')) >= 5  # downloads
    os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
    browser.execute_script('window.scrollTo(0, 0)')
    assert browser.save_screenshot(SCREENSHOT)


def test_plate_of_another_size_gives_a_message(app_url, browser):
    submit_photo(browser, app_url, SRC, OTHER_BGR)
    WebDriverWait(browser, RESULT_TIMEOUT).until(
        lambda d: 'upload a plate of the same size' in d.find_element(By.TAG_NAME, 'body').text,
        'the size message')
    body = browser.find_element(By.TAG_NAME, 'body').text
    assert 'the photo is 510x382 but the plate is 1280x720' in body
    assert 'Traceback' not in body


def test_video_in_the_browser(app_url, browser, tmp_path):
    from test_predict import scene, write_video
    from utils.image_io import write_image
    _, bgr, _ = scene(96, 128, seed=5)
    clip = write_video(str(tmp_path / 'clip.mp4'), [scene(96, 128, seed=5, shift=2 * i)[0] for i in range(8)],
                       fps=8)
    plate = str(tmp_path / 'plate.png')
    write_image(plate, bgr)
    browser.get(app_url)
    tab = "//button[@role='tab' and normalize-space()='Video']"
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.XPATH, tab))
    browser.find_element(By.XPATH, tab).click()  # the tab's content is built when it opens
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#vsrc input[type=file]'))
    upload(browser, 'vsrc', clip)
    upload(browser, 'vbgr', plate)
    browser.find_element(By.ID, 'vrun').click()
    WebDriverWait(browser, RESULT_TIMEOUT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, '#vnew video[src]'), 'the composite video')
    assert '8 frames 128x96' in browser.find_element(By.ID, 'vstatus').text
    # the browser itself decodes the WebM it was given
    WebDriverWait(browser, 60).until(lambda d: d.execute_script(
        "const v = document.querySelector('#vnew video'); return v.readyState >= 1 && v.duration > 0 "
        "&& v.videoWidth === 128 && v.videoHeight === 96;"), 'the video to load in the browser')
