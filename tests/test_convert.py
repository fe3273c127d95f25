"""The torch-free converter: official checkpoints of every backbone, DeepLabV3 weights, bad files."""
import collections
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import paddle
import pytest

from conftest import ROOT
from model import MattingBase, MattingRefine
from torch_format import paddle_to_official_state_dict, save_torch_zip
from model.weights import (CheckpointError, build_model, load_matched_state_dict, load_weights,
                           read_torch_checkpoint)
from utils.convert_weights import convert_checkpoint


def _official_checkpoint(path, model):
    """Write `model`'s weights as the official code's torch.save would (torchvision naming)."""
    save_torch_zip(paddle_to_official_state_dict(model.state_dict()), path)


def test_cli_converts_reference_checkpoint(reference_weights, tmp_path):
    dst = tmp_path / 'ref.pdparams'
    result = subprocess.run([sys.executable, '-m', 'utils.convert_weights', reference_weights, str(dst)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert 'mobilenetv2 MattingRefine, refiner kernel size 3' in result.stdout
    assert os.listdir(tmp_path) == ['ref.pdparams']  # no temporary file left behind
    state = paddle.load(str(dst))
    official = read_torch_checkpoint(reference_weights)
    assert len(state) == len([k for k in official if not k.endswith('num_batches_tracked')])
    np.testing.assert_array_equal(state['backbone.features.0.1._variance'].numpy(),
                                  official['backbone.features.0.1.running_var'])
    np.testing.assert_array_equal(state['refiner.conv4.bias'].numpy(), official['refiner.conv4.bias'])


@pytest.mark.parametrize('backbone,kernel', [('resnet50', 3), ('resnet101', 3), ('resnet101', 1),
                                             ('mobilenetv2', 1)])
def test_official_format_checkpoints_convert_completely(tmp_path, backbone, kernel):
    paddle.seed(1)
    model = MattingRefine(backbone, refine_kernel_size=kernel)
    path = str(tmp_path / f'pytorch_{backbone}.pth')
    _official_checkpoint(path, model)
    official = read_torch_checkpoint(path)
    assert sum(k.endswith('num_batches_tracked') for k in official) > 0
    state, config = load_weights(path)
    assert config == {'backbone': backbone, 'model_type': 'refine', 'refine_kernel_size': kernel}
    expected = model.state_dict()
    assert list(state) == list(expected)  # every entry, in the model's order
    for key, value in expected.items():
        np.testing.assert_array_equal(state[key], value.numpy(), err_msg=key)
    loaded = build_model(path)
    assert loaded.backbone_name == backbone and loaded.refiner.kernel_size == kernel
    for key, value in loaded.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), expected[key].numpy(), err_msg=key)


def test_official_resnet_naming_is_torchvision(tmp_path):
    path = str(tmp_path / 'r50.pth')
    _official_checkpoint(path, MattingRefine('resnet50'))
    keys = set(read_torch_checkpoint(path))
    for key in ('backbone.conv1.weight', 'backbone.bn1.running_mean', 'backbone.layer1.0.downsample.0.weight',
                'backbone.layer4.2.conv3.weight', 'backbone.layer4.0.downsample.1.num_batches_tracked',
                'aspp.convs.4.1.weight', 'aspp.project.1.running_var', 'decoder.conv4.bias',
                'refiner.bn3.running_mean'):
        assert key in keys, key
    # torchvision's resnet50 state dict: 320 entries, of which fc.weight / fc.bias are deleted
    # by the official encoder: 6 (stem) + 16 blocks x 18 + 4 downsamples x 6 = 318
    assert sum(k.startswith('backbone.') for k in keys) == 318


def test_matting_base_checkpoint(tmp_path):
    path = str(tmp_path / 'base.pth')
    _official_checkpoint(path, MattingBase('resnet50'))
    state, config = load_weights(path)
    assert config == {'backbone': 'resnet50', 'model_type': 'base', 'refine_kernel_size': None}
    assert isinstance(build_model(path), MattingBase)
    with pytest.raises(CheckpointError, match='MattingBase weights'):
        build_model(path, model_type='refine')
    model = build_model(path, model_type='refine', strict=False)  # refine training starts so
    assert isinstance(model, MattingRefine)


def _deeplabv3_checkpoint(path, backbone):
    """A DeepLabV3 (VainF) checkpoint: 3-channel stem, classifier.classifier.0 = ASPP, a head."""
    base = MattingBase(backbone)
    official = paddle_to_official_state_dict(base.state_dict())
    deeplab = collections.OrderedDict()
    for key, value in official.items():
        if key.startswith('decoder.'):
            continue  # DeepLabV3 has no such decoder
        if key in ('backbone.features.0.0.weight', 'backbone.conv1.weight'):
            value = value[:, :3]  # RGB input
        key = key.replace('aspp.', 'classifier.classifier.0.')
        if backbone == 'mobilenetv2' and key.startswith('backbone.features.'):
            index, rest = key[len('backbone.features.'):].split('.', 1)
            index = int(index)
            part, index = ('low_level_features', index) if index < 4 else ('high_level_features', index - 4)
            key = f'backbone.{part}.{index}.{rest}'
        deeplab[key] = value
    deeplab['classifier.classifier.3.weight'] = np.ones((21, 256, 1, 1), np.float32)
    save_torch_zip(deeplab, path)
    return base, official


@pytest.mark.parametrize('backbone', ['mobilenetv2', 'resnet50'])
def test_deeplabv3_weights_load_what_matches(tmp_path, backbone, capsys):
    path = str(tmp_path / 'deeplab.pth')
    source, official = _deeplabv3_checkpoint(path, backbone)
    dst = str(tmp_path / 'deeplab.pdparams')
    config = convert_checkpoint(path, dst, deeplabv3_backbone=backbone)
    total = len(MattingBase(backbone).state_dict())
    decoder = sum(k.startswith('decoder.') for k in source.state_dict())
    # everything but the decoder and the 6-channel stem conv matches
    assert (config['matched'], config['total']) == (total - decoder - 1, total)
    assert f"{total - decoder - 1}/{total} MattingBase entries matched" in capsys.readouterr().out
    paddle.seed(5)
    target = MattingBase(backbone)
    matched, count = load_matched_state_dict(target, paddle.load(dst))
    assert (matched, count) == (total - decoder - 1, total)
    key = 'aspp.project.1._mean'
    np.testing.assert_array_equal(target.state_dict()[key].numpy(), source.state_dict()[key].numpy())


def test_dict_wrapped_and_dataparallel_checkpoints(tmp_path):
    base = MattingBase('mobilenetv2')
    official = paddle_to_official_state_dict(base.state_dict())
    path = str(tmp_path / 'ddp.pth')
    save_torch_zip(collections.OrderedDict(('module.' + k, v) for k, v in official.items()), path)
    assert load_weights(path)[1]['model_type'] == 'base'


def test_cli_reduces_a_training_checkpoint_to_model_weights(tmp_path):
    """How the default checkpoint was made: a train.py checkpoint -> the model weights only."""
    from utils.training.checkpoint import save_checkpoint
    paddle.seed(3)
    model = MattingRefine('mobilenetv2', refine_kernel_size=1)
    optimizer = paddle.optimizer.Adam(parameters=model.parameters())
    path = save_checkpoint(str(tmp_path / 'run'), 'epoch-0-step-5.pdparams', model, optimizer,
                           {'step': 5, 'epoch': 0})
    dst = str(tmp_path / 'weights.pdparams')
    proc = subprocess.run([sys.executable, '-m', 'utils.convert_weights', path, dst], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'MattingRefine, refiner kernel size 1' in proc.stdout
    weights = paddle.load(dst, return_numpy=True)
    expected = model.state_dict()
    assert sorted(weights) == sorted(expected)  # the model only: no optimizer, rng or meta
    for key, value in expected.items():
        np.testing.assert_array_equal(weights[key], value.numpy())


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match='no such file'):
        read_torch_checkpoint(str(tmp_path / 'nope.pth'))


def test_legacy_format_without_torch_says_what_to_do(tmp_path):
    path = tmp_path / 'legacy.pth'
    path.write_bytes(pickle.dumps({'a': 1}))
    try:
        import torch  # noqa: F401
        pytest.skip('torch is installed here; the legacy path would use it')
    except ImportError:
        pass
    with pytest.raises(CheckpointError, match='pip install torch'):
        read_torch_checkpoint(str(path))


def test_zip_that_is_not_a_checkpoint(tmp_path):
    path = str(tmp_path / 'x.pth')
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('readme.txt', 'hello')
    with pytest.raises(CheckpointError, match='not a torch checkpoint'):
        read_torch_checkpoint(path)


def test_pickled_code_is_refused(tmp_path):
    """A checkpoint cannot make the converter call arbitrary globals."""
    path = str(tmp_path / 'evil.pth')
    payload = b'\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueR.'
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('evil/data.pkl', payload)
    with pytest.raises(CheckpointError, match='os.system is not part of a plain state dict'):
        read_torch_checkpoint(path)


def test_not_a_bgmv2_checkpoint(tmp_path):
    path = str(tmp_path / 'classifier.pth')
    save_torch_zip({'fc.weight': np.zeros((10, 4), np.float32)}, path)
    with pytest.raises(CheckpointError, match='not a BackgroundMattingV2 checkpoint'):
        load_weights(path)


@pytest.mark.parametrize('change,message', [
    ('drop', '1 missing: decoder.conv4.bias'),
    ('extra', '1 unexpected: decoder.conv5.weight'),
    ('shape', 'of the wrong shape: aspp.project.0.weight'),
])
def test_mismatched_entries_are_listed(tmp_path, change, message):
    official = paddle_to_official_state_dict(MattingRefine('mobilenetv2').state_dict())
    if change == 'drop':
        del official['decoder.conv4.bias']
    elif change == 'extra':
        official['decoder.conv5.weight'] = np.zeros((1, 1, 1, 1), np.float32)
    else:
        official['aspp.project.0.weight'] = np.zeros((256, 1024, 1, 1), np.float32)
    path = str(tmp_path / 'bad.pth')
    save_torch_zip(official, path)
    dst = tmp_path / 'out.pdparams'
    dst.write_bytes(b'previous')
    with pytest.raises(CheckpointError, match=message):
        convert_checkpoint(path, str(dst))
    assert dst.read_bytes() == b'previous'  # a failed conversion leaves the old file alone


def test_cli_reports_errors_without_traceback(tmp_path):
    bad = tmp_path / 'bad.pth'
    bad.write_text('not a checkpoint')
    result = subprocess.run([sys.executable, '-m', 'utils.convert_weights', str(bad), str(tmp_path / 'o.pdparams')],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.startswith('error: ') and 'Traceback' not in result.stderr
    assert str(bad) in result.stderr


def test_wrong_backbone_and_kernel_requests(converted_weights):
    with pytest.raises(CheckpointError, match='holds mobilenetv2 weights'):
        build_model(converted_weights, backbone='resnet50')
    with pytest.raises(CheckpointError, match='kernel size 3'):
        build_model(converted_weights, refine_kernel_size=1)


def test_pdparams_that_is_not_paddle(tmp_path):
    path = tmp_path / 'x.pdparams'
    path.write_bytes(b'\x00garbage')
    with pytest.raises(CheckpointError, match='not a Paddle .pdparams'):
        load_weights(str(path))


def test_wrong_shape_is_one_line_naming_the_shapes(tmp_path):
    """A tensor of another shape is reported as such (expected vs got), not as missing/unexpected."""
    from utils.convert_weights import save_pdparams
    paddle.seed(0)
    state = {k: v.numpy() for k, v in MattingRefine('mobilenetv2').state_dict().items()}
    state['decoder.conv1.weight'] = np.zeros([128, 288, 3, 5], np.float32)
    path = str(tmp_path / 'wrong_shape.pdparams')
    save_pdparams(state, path)
    with pytest.raises(CheckpointError) as info:
        build_model(path)
    message = str(info.value)
    assert '\n' not in message and 'wrong shape' in message
    assert 'decoder.conv1.weight (expected [128, 288, 3, 3], got [128, 288, 3, 5])' in message
    assert 'missing' not in message and 'unexpected' not in message
