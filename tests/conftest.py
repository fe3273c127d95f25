"""Shared test fixtures: paths to the official reference data and converted weights."""
import atexit
import os
import shutil
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# ../shared/reference beside the project (CI and developers); override with BGMV2_REFERENCE.
REFERENCE_DIR = os.environ.get(
    'BGMV2_REFERENCE', os.path.join(os.path.dirname(ROOT), 'shared', 'reference'))
MOBILENET_REF = os.path.join(REFERENCE_DIR, 'mobilenetv2')

# Paddle Inference exports made by the tests (and the CLIs they start) go to a private cache,
# not the user's; removed at exit.
from utils.deploy.export import CACHE_ENV  # noqa: E402
TEST_CACHE_DIR = tempfile.mkdtemp(prefix='bgmv2-test-cache-')
os.environ[CACHE_ENV] = TEST_CACHE_DIR
atexit.register(shutil.rmtree, TEST_CACHE_DIR, ignore_errors=True)


def require_reference():
    """Skip on a machine without the reference data; fail in CI, where it must be present."""
    if not os.path.isfile(os.path.join(MOBILENET_REF, 'weights.pth')):
        message = f'official reference data not found at {REFERENCE_DIR} (set BGMV2_REFERENCE)'
        if os.environ.get('CI'):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope='session')
def reference_dir():
    require_reference()
    return MOBILENET_REF


@pytest.fixture(scope='session')
def reference_weights(reference_dir):
    """The reference MobileNetV2 MattingRefine checkpoint (official torch format)."""
    return os.path.join(reference_dir, 'weights.pth')


@pytest.fixture(scope='session')
def converted_weights(reference_weights, tmp_path_factory):
    """reference weights.pth converted to .pdparams once per session with our converter."""
    from utils.convert_weights import convert_checkpoint
    path = str(tmp_path_factory.mktemp('weights') / 'mobilenetv2_ref.pdparams')
    convert_checkpoint(reference_weights, path)
    return path
