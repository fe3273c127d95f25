"""Tests of utils/training/precise_bn.py and utils/training/averaging.py, through
`python -m utils.convert_weights` (--precise-bn, several checkpoints)."""
import os
import subprocess
import sys

import numpy as np
import paddle

from conftest import ROOT
import train
from utils.training.checkpoint import load_checkpoint
from utils.training.precise_bn import batch_norm_layers, recompute_bn_statistics


class _TwoInputs(paddle.nn.Layer):
    """The matting models' call signature (src, bgr) around one BatchNorm layer."""

    def __init__(self):
        super().__init__()
        self.bn = paddle.nn.BatchNorm2D(3)

    def forward(self, src, bgr):
        return self.bn(src - bgr)


def test_statistics_become_the_average_over_the_batches():
    rng = np.random.default_rng(0)
    # batches with very different statistics: a momentum average would favour the last ones
    batches = [(rng.normal(k, 1 + k, (2, 3, 5, 4)).astype(np.float32), np.zeros((2, 3, 5, 4), np.float32))
               for k in range(4)]
    model = _TwoInputs()
    assert recompute_bn_statistics(model, batches) == 4
    means = [src.mean(axis=(0, 2, 3)) for src, _ in batches]
    variances = [src.var(axis=(0, 2, 3)) for src, _ in batches]  # Paddle keeps the biased batch variance
    np.testing.assert_allclose(model.bn._mean.numpy(), np.mean(means, axis=0), rtol=1e-5)
    np.testing.assert_allclose(model.bn._variance.numpy(), np.mean(variances, axis=0), rtol=1e-4)
    assert not model.training and model.bn._momentum == 0.9  # the layer's own momentum is back


def tiny_run(tmp_path, *extra):
    args = [*extra, '--stage', 'refine', '--dataset-name', 'synthetic', '--model-backbone', 'mobilenetv2',
            '--model-name', 'pbn', '--epoch-end', '1', '--device', 'cpu', '--batch-size', '2',
            '--sample-size', '64', '--crop-size', '48', '64', '--synthetic-length', '4', '--valid-samples', '2',
            '--num-workers', '0', '--no-progress', '--model-refine-sample-pixels', '1024',
            '--checkpoint-dir', str(tmp_path / 'checkpoint'), '--log-dir', str(tmp_path / 'log')]
    assert train.main(args) == 0
    return str(tmp_path / 'checkpoint' / 'pbn' / 'epoch-0.pdparams')


def convert(*args):
    return subprocess.run([sys.executable, '-m', 'utils.convert_weights', *args, '--no-progress'], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_cli_recomputes_only_the_statistics_of_a_training_checkpoint(tmp_path):
    checkpoint = tiny_run(tmp_path)
    dst = str(tmp_path / 'precise.pdparams')
    proc = convert(checkpoint, dst, '--precise-bn', '3')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'MattingRefine' in proc.stdout
    weights = paddle.load(dst, return_numpy=True)
    saved = {k: v.numpy() for k, v in load_checkpoint(checkpoint)['model'].items()}
    assert sorted(weights) == sorted(saved)
    statistics = {k for k in saved if k.endswith(('._mean', '._variance'))}
    assert len(statistics) == 2 * len(batch_norm_layers(train_model_like(checkpoint)))
    changed = [k for k in statistics if not np.allclose(weights[k], saved[k])]
    assert len(changed) > len(statistics) // 2
    for k in set(saved) - statistics:  # learned weights untouched
        np.testing.assert_array_equal(weights[k], saved[k])

    # the batches are a function of the checkpoint's options and a fixed seed: same result again
    again = str(tmp_path / 'again.pdparams')
    assert convert(checkpoint, again, '--precise-bn', '3').returncode == 0
    second = paddle.load(again, return_numpy=True)
    for k in statistics:
        np.testing.assert_allclose(second[k], weights[k], rtol=1e-5, atol=1e-6)

    # plain weights carry no options to draw batches from: a one-line error
    proc = convert(dst, str(tmp_path / 'x.pdparams'), '--precise-bn', '3')
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert 'holds weights only' in proc.stderr and 'needs a train.py checkpoint' in proc.stderr


def train_model_like(checkpoint):
    from types import SimpleNamespace
    from utils.training.loop import new_model
    return new_model(SimpleNamespace(**load_checkpoint(checkpoint)['meta']['args']))


def test_cli_averages_the_checkpoints_of_a_run(tmp_path):
    from utils.training.averaging import average_checkpoints
    tiny_run(tmp_path, '--checkpoint-interval', '1')
    first, last = (str(tmp_path / 'checkpoint' / 'pbn' / f) for f in ('epoch-0-step-1.pdparams', 'epoch-0.pdparams'))
    a, b = ({k: v.numpy() for k, v in load_checkpoint(p)['model'].items()} for p in (first, last))
    learned = [k for k in a if not k.endswith(('._mean', '._variance')) and not np.array_equal(a[k], b[k])]
    assert learned  # one step apart: the weights differ

    mean, meta = average_checkpoints([last, first])
    assert meta['step'] == 2  # the newest checkpoint's options and step, whatever the order
    for k in a:
        np.testing.assert_allclose(mean[k], (a[k].astype(np.float64) + b[k]) / 2, rtol=1e-6, atol=1e-7)

    plain = str(tmp_path / 'mean.pdparams')
    proc = convert(first, last, plain)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'the mean of 2 checkpoints' in proc.stdout and 'MattingRefine' in proc.stdout
    saved = paddle.load(plain, return_numpy=True)
    for k in learned:
        np.testing.assert_allclose(saved[k], mean[k], rtol=1e-6)

    # with --precise-bn the statistics are recomputed for the mean weights, which stay as they are
    precise = str(tmp_path / 'precise.pdparams')
    assert convert(first, last, precise, '--precise-bn', '2').returncode == 0
    recomputed = paddle.load(precise, return_numpy=True)
    for k in learned:
        np.testing.assert_allclose(recomputed[k], mean[k], rtol=1e-6)
    statistics = [k for k in a if k.endswith('._mean')]
    assert sum(not np.allclose(recomputed[k], mean[k]) for k in statistics) > len(statistics) // 2


def test_averaging_refuses_weights_files_and_other_networks(tmp_path):
    checkpoint = tiny_run(tmp_path)
    proc = convert(checkpoint, str(tmp_path / 'w.pdparams'))
    assert proc.returncode == 0
    proc = convert(checkpoint, str(tmp_path / 'w.pdparams'), str(tmp_path / 'x.pdparams'))
    assert proc.returncode == 1 and 'holds weights only' in proc.stderr and 'Traceback' not in proc.stderr
    other = load_checkpoint(checkpoint)
    other['meta']['args']['model_backbone'] = 'resnet50'
    paddle.save(other, str(tmp_path / 'other.pdparams'))
    proc = convert(checkpoint, str(tmp_path / 'other.pdparams'), str(tmp_path / 'x.pdparams'))
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert 'hold different networks (--model-backbone differ)' in proc.stderr.strip().splitlines()[-1]
    assert not os.path.exists(tmp_path / 'x.pdparams')


def test_cli_blends_the_checkpoints_toward_the_start_weights(tmp_path):
    tiny_run(tmp_path, '--checkpoint-interval', '1')
    first, last = (str(tmp_path / 'checkpoint' / 'pbn' / f) for f in ('epoch-0-step-1.pdparams', 'epoch-0.pdparams'))
    a, b = ({k: v.numpy() for k, v in load_checkpoint(p)['model'].items()} for p in (first, last))
    start = str(tmp_path / 'start.pdparams')
    assert convert(first, start).returncode == 0  # a weights file, as a run's start point is
    learned = [k for k in a if not k.endswith(('._mean', '._variance')) and not np.array_equal(a[k], b[k])]

    blended = str(tmp_path / 'blend.pdparams')
    proc = convert(last, blended, '--precise-bn', '2', '--blend', start, '--blend-fraction', '0.25')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f'blended 0.25 toward {start}' in proc.stdout
    saved = paddle.load(blended, return_numpy=True)
    for k in learned:
        np.testing.assert_allclose(saved[k], 0.75 * b[k].astype(np.float64) + 0.25 * a[k], rtol=1e-6, atol=1e-7)
    statistics = [k for k in a if k.endswith('._mean')]
    mixed = {k: 0.75 * b[k] + 0.25 * a[k] for k in statistics}
    assert sum(not np.allclose(saved[k], mixed[k]) for k in statistics) > len(statistics) // 2  # recomputed

    from utils.training.averaging import blend
    for fraction, expected in ((0, b), (1, a)):
        ends = blend(b, start, fraction)
        for k in learned:
            np.testing.assert_allclose(ends[k], expected[k], rtol=1e-6)


def test_blend_errors_are_one_line(tmp_path):
    checkpoint = tiny_run(tmp_path)
    out = str(tmp_path / 'x.pdparams')
    for args, message in (([checkpoint, out, '--blend', checkpoint], '--precise-bn BATCHES'),
                          ([checkpoint, out, '--precise-bn', '2', '--blend-fraction', '0.3'], 'goes with --blend'),
                          ([checkpoint, out, '--precise-bn', '2', '--blend', checkpoint, '--blend-fraction', '1.5'],
                           'between 0 and 1')):
        proc = convert(*args)
        assert proc.returncode == 2 and message in proc.stderr.strip().splitlines()[-1], proc.stderr[-500:]
    other = load_checkpoint(checkpoint)
    other['model'] = {k: v for k, v in other['model'].items() if not k.startswith('refiner.')}
    paddle.save(other['model'], str(tmp_path / 'base.pdparams'))
    proc = convert(checkpoint, out, '--precise-bn', '2', '--blend', str(tmp_path / 'base.pdparams'))
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert 'holds another network than the checkpoints' in proc.stderr.strip().splitlines()[-1]
    assert not os.path.exists(out)


def test_batches_are_drawn_with_the_runs_shadows(tmp_path):
    from dataset.augmentation import SHADOW_PROB
    from utils.training.precise_bn import checkpoint_batches
    meta_args = load_checkpoint(tiny_run(tmp_path, '--shadow-prob', '0'))['meta']['args']
    assert checkpoint_batches(meta_args, 2).augment.shadow_prob == 0
    # a checkpoint saved before the option existed was trained with the official shadows
    older = {k: v for k, v in meta_args.items() if k != 'shadow_prob'}
    assert checkpoint_batches(older, 2).augment.shadow_prob == SHADOW_PROB
