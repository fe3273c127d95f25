"""Parity of the ResNet-50 / ResNet-101 models with the official PyTorch code, without torch.

tests/data/resnet_reference.npz holds the official code's outputs (made by
tools/make_resnet_reference.py with torch) for seeded numpy weights. Here the same weights are
regenerated with tests/resnet_reference_weights.py, written as an official-format checkpoint
(torch's zip layout, official names, num_batches_tracked included), read back through our
converter (`model.load_weights`), and our models must give: ref_sm identical
(the same patches refined), every other output within 1e-4. The measured maximum differences
are printed (pytest -s). One MattingRefine is built per backbone; each mode gets its own Refiner
(loaded with the same refiner weights), as building a ResNet-101 per mode is slow. MattingBase is
checked on the downsampled input (all outputs) and on the full-size input (pha, err), where the
deepest feature map is big enough for the dilated ASPP branches to see more than their centre.

BGMV2_RESNET_REFERENCE=<file.npz> checks another file made by the tool (e.g. a larger size).
"""
import json
import os

import numpy as np
import paddle
import pytest

from conftest import ROOT
from model import MattingBase, MattingRefine, Refiner
from resnet_reference_weights import make_weights, weights_digest
from torch_format import save_torch_zip
from model.weights import load_weights, torch_key_to_paddle

TOLERANCE = 1e-4
REFERENCE = os.environ.get('BGMV2_RESNET_REFERENCE',
                           os.path.join(ROOT, 'tests', 'data', 'resnet_reference.npz'))
MODES = ('full', 'sampling', 'thresholding')
OUTPUTS = ('pha', 'fgr', 'pha_sm', 'fgr_sm', 'err_sm', 'ref_sm')


def _load():
    data = np.load(REFERENCE)
    return data, json.loads(str(data['meta']))


DATA, META = _load()
BACKBONES = list(META['backbones'])


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """backbone -> (Paddle state dict from our converter, MattingRefine with it loaded), lazily."""
    cache = {}

    def get(backbone):
        if backbone not in cache:
            info = META['backbones'][backbone]
            weights = make_weights([(k, s) for k, s, _ in info['entries']], META['seed'],
                                   info['head_bias'])
            assert weights_digest(weights) == info['weights_sha256'], \
                'regenerated weights differ from the ones the reference was made with (numpy changed its random streams?)'
            path = str(tmp_path_factory.mktemp(backbone) / f'{backbone}_official.pth')
            save_torch_zip(weights, path)
            del weights
            state, config = load_weights(path)
            os.remove(path)
            assert config == {'backbone': backbone, 'model_type': 'refine', 'refine_kernel_size': 3}
            with paddle.LazyGuard():  # no random init: every entry is loaded next
                model = MattingRefine(backbone)
            missing, unexpected = model.set_state_dict(state)
            assert not missing and not unexpected
            model.eval()
            cache[backbone] = state, model
        return cache[backbone]
    return get


def _max_diffs(outputs, expected):
    diffs = {}
    for name, out in outputs.items():
        ref = expected[name]
        assert list(out.shape) == list(ref.shape), (name, out.shape, ref.shape)
        diffs[name] = float(np.abs(out.numpy() - ref).max())
    return diffs


@pytest.mark.parametrize('backbone', BACKBONES)
def test_state_dict_layout_matches_official(backbone):
    """Our parameter names and shapes are the official ones under the converter's renaming."""
    official = {torch_key_to_paddle(k): tuple(s) for k, s, _ in META['backbones'][backbone]['entries']}
    official.pop(None)  # num_batches_tracked
    with paddle.LazyGuard():
        ours = {k: tuple(v.shape) for k, v in MattingRefine(backbone).state_dict().items()}
    assert ours == official


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('backbone', BACKBONES)
def test_matting_refine_matches_official(converted, backbone, mode):
    state, model = converted(backbone)
    config = META['backbones'][backbone]['modes'][mode]['config']
    # Same network, refiner set up for this mode (constructing a ResNet per mode is slow).
    refiner = Refiner(mode=config['refine_mode'],
                      sample_pixels=config.get('refine_sample_pixels', 80_000),
                      threshold=config.get('refine_threshold', 0.1), kernel_size=3)
    refiner.set_state_dict({k[len('refiner.'):]: v for k, v in state.items() if k.startswith('refiner.')})
    refiner.eval()
    model.refiner = refiner
    with paddle.no_grad():
        outputs = dict(zip(OUTPUTS, model(paddle.to_tensor(DATA['src']), paddle.to_tensor(DATA['bgr']))))
    expected = {name: DATA[f'{backbone}/{mode}/{name}' if name in ('pha', 'fgr', 'ref_sm')
                           else f'{backbone}/coarse/{name}'] for name in OUTPUTS}
    diffs = _max_diffs(outputs, expected)
    print(f'\n{backbone} {mode} {config}: ' + ', '.join(f'{k} {v:.2e}' for k, v in diffs.items()))
    assert diffs['ref_sm'] == 0.0, 'a different set of patches was refined'
    assert max(diffs.values()) <= TOLERANCE, diffs


@pytest.mark.parametrize('backbone', BACKBONES)
def test_matting_base_matches_official(converted, backbone):
    """On the downsampled input (all four outputs), and on the full-size input (pha and err),
    where the deepest feature map is large enough for the dilated ASPP branches to matter."""
    state, _ = converted(backbone)
    with paddle.LazyGuard():
        model = MattingBase(backbone)
    missing, unexpected = model.set_state_dict({k: v for k, v in state.items() if not k.startswith('refiner.')})
    assert not missing and not unexpected
    model.eval()
    diffs = {}
    for case, (src, bgr), names in (('base', ('src_sm', 'bgr_sm'), ('pha', 'fgr', 'err', 'hid')),
                                    ('base_full', ('src', 'bgr'), ('pha', 'err'))):
        with paddle.no_grad():
            outputs = dict(zip(('pha', 'fgr', 'err', 'hid'),
                               model(paddle.to_tensor(DATA[src]), paddle.to_tensor(DATA[bgr]))))
        outputs = {name: outputs[name] for name in names}
        expected = {name: DATA[f'{backbone}/{case}/{name}'] for name in names}
        diffs.update({f'{case}/{k}': v for k, v in _max_diffs(outputs, expected).items()})
    print(f'\n{backbone} MattingBase: ' + ', '.join(f'{k} {v:.2e}' for k, v in diffs.items()))
    assert max(diffs.values()) <= TOLERANCE, diffs
