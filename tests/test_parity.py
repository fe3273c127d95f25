"""Parity with the official PyTorch implementation on ../shared/reference.

The reference case files hold the official code's outputs for seeded random MobileNetV2 weights
in which every parameter matters. We convert the official-format checkpoint with our converter
(no torch), run our model and require: ref_sm identical (the same patches refined), every other
output within 1e-4. The measured maximum differences are printed (pytest -s) and written to
log/parity.json so that README's table can be checked against a run.
"""
import json
import os

import numpy as np
import paddle
import pytest

from conftest import MOBILENET_REF, ROOT, require_reference
from model import MattingBase, MattingRefine
from model.refiner import Refiner
from model.weights import convert_state_dict, read_torch_checkpoint

TOLERANCE = 1e-4
MODES = {
    'full': dict(refine_mode='full'),
    'sampling80000': dict(refine_mode='sampling', refine_sample_pixels=80_000),
    'sampling4000': dict(refine_mode='sampling', refine_sample_pixels=4_000),
    'thresholding0.1': dict(refine_mode='thresholding', refine_threshold=0.1),
}
OUTPUTS = ('pha', 'fgr', 'pha_sm', 'fgr_sm', 'err_sm', 'ref_sm')
# (file, refiner kernel size, modes it holds); the 720x1280 case is lean: sampling80000 only.
CASES = [('case_256x384.npz', 3, list(MODES)), ('case_256x384_k1.npz', 1, list(MODES)),
         ('case_720x1280.npz', 3, ['sampling80000'])]
MEASURED = {}


@pytest.fixture(scope='module')
def state_dicts():
    """Converted Paddle state dicts for refiner kernel sizes 3 and 1."""
    require_reference()
    official = read_torch_checkpoint(os.path.join(MOBILENET_REF, 'weights.pth'))
    k3, config = convert_state_dict(official)
    assert config == {'backbone': 'mobilenetv2', 'model_type': 'refine', 'refine_kernel_size': 3}
    # Kernel-1 model = weights.pth with its refiner.* entries replaced by refiner_k1.pth.
    official.update(read_torch_checkpoint(os.path.join(MOBILENET_REF, 'refiner_k1.pth')))
    k1, config = convert_state_dict(official)
    assert config['refine_kernel_size'] == 1
    return {3: k3, 1: k1}


def _reference_key(case, mode, name):
    return f'{mode}/{name}' if name in ('pha', 'fgr', 'ref_sm') else f'coarse/{name}'


def _cases():
    # a list: pytest deprecates (PytestRemovedIn10Warning) parametrizing over a generator
    return [pytest.param(filename, kernel, mode, id=f'{filename[5:-4]}-{mode}')
            for filename, kernel, modes in CASES for mode in modes]


@pytest.mark.parametrize('filename,kernel,mode', _cases())
def test_matting_refine_matches_official(state_dicts, filename, kernel, mode):
    case = np.load(os.path.join(MOBILENET_REF, filename))
    model = MattingRefine('mobilenetv2', refine_kernel_size=kernel, **MODES[mode])
    model.set_state_dict(state_dicts[kernel])
    model.eval()
    with paddle.no_grad():
        outputs = model(paddle.to_tensor(case['src']), paddle.to_tensor(case['bgr']))
    diffs = {}
    for name, out in zip(OUTPUTS, outputs):
        key = _reference_key(case, mode, name)
        if key not in case.files:
            continue
        expected = case[key]
        assert out.shape == list(expected.shape), name
        diffs[name] = float(np.abs(out.numpy() - expected).max())
    MEASURED[f'{filename[5:-4]} {mode}'] = diffs
    print(f'\n{filename} {mode}: ' + ', '.join(f'{k} {v:.2e}' for k, v in diffs.items()))
    assert diffs['ref_sm'] == 0.0, 'a different set of patches was refined'
    worst = max(v for k, v in diffs.items() if k != 'ref_sm')
    assert worst <= TOLERANCE, diffs


def test_matting_base_matches_official(state_dicts):
    case = np.load(os.path.join(MOBILENET_REF, 'case_256x384.npz'))
    model = MattingBase('mobilenetv2')
    base_state = {k: v for k, v in state_dicts[3].items() if not k.startswith('refiner.')}
    missing, unexpected = model.set_state_dict(base_state)
    assert not missing and not unexpected
    model.eval()
    with paddle.no_grad():
        outputs = model(paddle.to_tensor(case['src_sm']), paddle.to_tensor(case['bgr_sm']))
    diffs = {name: float(np.abs(out.numpy() - case[f'base/{name}']).max())
             for name, out in zip(('pha', 'fgr', 'err', 'hid'), outputs)}
    MEASURED['256x384 MattingBase'] = diffs
    print('\nMattingBase: ' + ', '.join(f'{k} {v:.2e}' for k, v in diffs.items()))
    assert max(diffs.values()) <= TOLERANCE, diffs


def test_refiner_alone_matches_official(state_dicts):
    """The refiner fed the official decoder output gives the official full-mode result."""
    case = np.load(os.path.join(MOBILENET_REF, 'case_256x384.npz'))
    decoder_out = paddle.to_tensor(case['coarse/decoder_out'])
    refiner = Refiner('full', kernel_size=3)
    refiner.set_state_dict({k[len('refiner.'):]: v for k, v in state_dicts[3].items()
                            if k.startswith('refiner.')})
    refiner.eval()
    src, bgr = paddle.to_tensor(case['src']), paddle.to_tensor(case['bgr'])
    with paddle.no_grad():
        pha, fgr, _ = refiner(src, bgr, decoder_out[:, 0:1].clip(0, 1), decoder_out[:, 1:4],
                              decoder_out[:, 4:5].clip(0, 1), paddle.nn.functional.relu(decoder_out[:, 5:]))
    assert np.abs(pha.clip(0, 1).numpy() - case['full/pha']).max() <= TOLERANCE
    assert np.abs((fgr + src).clip(0, 1).numpy() - case['full/fgr']).max() <= TOLERANCE


def test_write_measured_parity():
    """Record the measured differences of this run (README's parity table comes from here)."""
    if not MEASURED:
        pytest.skip('no parity test ran')
    os.makedirs(os.path.join(ROOT, 'log'), exist_ok=True)
    with open(os.path.join(ROOT, 'log', 'parity.json'), 'w') as f:
        json.dump(MEASURED, f, indent=1, sort_keys=True)
