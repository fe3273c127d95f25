"""Tests of the training code (train.py, utils/training/loop.py and its helpers), on tiny synthetic data.

Sizes are kept tiny (64x64 images, MobileNetV2, batch 2, a few steps) so that the whole file
runs in a few minutes on two busy CPU cores.
"""
import argparse
import glob
import os
import signal
import subprocess
import sys

import numpy as np
import paddle
import pytest
from scipy import ndimage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import train  # noqa: E402
from utils.training.checkpoint import load_checkpoint  # noqa: E402
from dataset.batches import MattingBatches  # noqa: E402
from utils.evaluation.trimap import UNKNOWN, make_trimap  # noqa: E402
from utils.training.losses import (compute_loss_base, loss_terms_base, loss_terms_refine, sobel,  # noqa: E402
                                   foreground_region, unknown_region)
from utils.training.loop import STAGES, build_optimizer, forward_losses, new_model  # noqa: E402


def tiny_args(tmp_path, name, stage='base', *extra, steps_per_epoch=4, epochs=1):
    """train.py arguments for a tiny synthetic run writing under tmp_path."""
    return ['--stage', stage, '--dataset-name', 'synthetic', '--model-backbone', 'mobilenetv2',
            '--model-name', name, '--epoch-end', str(epochs), '--device', 'cpu', '--batch-size', '2',
            '--sample-size', '64', '--crop-size', '48', '64', '--synthetic-length', str(2 * steps_per_epoch),
            '--valid-samples', '2', '--num-workers', '0', '--no-progress', '--log-train-loss-interval', '1',
            '--model-refine-sample-pixels', '1024',
            '--checkpoint-dir', str(tmp_path / 'checkpoint'), '--log-dir', str(tmp_path / 'log'), *extra]


def model_args(stage):
    return argparse.Namespace(stage=stage, model_backbone='mobilenetv2', model_backbone_scale=0.25,
                              model_refine_mode='sampling', model_refine_sample_pixels=1024,
                              model_refine_threshold=0.7, model_refine_kernel_size=3)


def max_state_diff(a, b):
    assert set(a) == set(b)
    return max(float(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)).max())
               for k in a if np.asarray(a[k]).size)


def as_numpy(state):
    return {k: v.numpy() if isinstance(v, paddle.Tensor) else v for k, v in state.items()
            if isinstance(v, (paddle.Tensor, np.ndarray))}


# ---------------------------------------------------------------------------------------------
# Losses, optimizer, batches
# ---------------------------------------------------------------------------------------------

def test_sobel_is_normalized_replicate_padded_magnitude():
    x = np.random.default_rng(0).random((2, 3, 9, 11)).astype(np.float32)
    k = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32) / 8
    ref = np.zeros_like(x)
    for b in range(2):
        for c in range(3):
            gx = ndimage.correlate(x[b, c], k, mode='nearest')
            gy = ndimage.correlate(x[b, c], k.T, mode='nearest')
            ref[b, c] = np.sqrt(gx ** 2 + gy ** 2 + 1e-6)
    np.testing.assert_allclose(sobel(paddle.to_tensor(x)).numpy(), ref, atol=1e-6)


def test_base_loss_matches_the_official_formula():
    rng = np.random.default_rng(1)
    pred_pha, pred_err, true_pha = (rng.random((2, 1, 16, 16)).astype(np.float32) for _ in range(3))
    pred_fgr, true_fgr = (rng.random((2, 3, 16, 16)).astype(np.float32) for _ in range(2))
    true_pha[:, :, :5] = 0  # a background region: fgr is not penalised there
    mask = (true_pha != 0).astype(np.float32)
    sob = lambda a: sobel(paddle.to_tensor(a)).numpy()  # noqa: E731 (checked against scipy above)
    expected = (np.abs(pred_pha - true_pha).mean() + np.abs(sob(pred_pha) - sob(true_pha)).mean()
                + np.abs(pred_fgr * mask - true_fgr * mask).mean()
                + ((pred_err - np.abs(pred_pha - true_pha)) ** 2).mean())
    t = [paddle.to_tensor(a) for a in (pred_pha, pred_fgr, pred_err, true_pha, true_fgr)]
    assert float(compute_loss_base(*t)) == pytest.approx(float(expected), rel=1e-5)


def test_losses_vanish_for_a_perfect_prediction_and_err_target_is_detached_in_base():
    pha = paddle.rand([2, 1, 16, 16])
    fgr = paddle.rand([2, 3, 16, 16])
    pred = paddle.to_tensor(pha.numpy(), stop_gradient=False)
    terms = loss_terms_base(pred, fgr, paddle.zeros_like(pha), pha, fgr)
    assert all(float(v) < 1e-6 for v in terms.values())
    # Only the error term is non-zero here; its target must not send gradient into pha (official base).
    terms = loss_terms_base(pred, fgr, paddle.full_like(pha, 0.5), pha, fgr)
    terms['err_mse'].backward()
    assert pred.grad is None or float(paddle.abs(pred.grad).sum()) == 0.0
    # The refine loss has seven terms, including the backbone-resolution ones.
    sm = paddle.nn.functional.interpolate(pha, size=[4, 4], mode='bilinear')
    refine = loss_terms_refine(pha, fgr, sm, paddle.rand([2, 3, 4, 4]), paddle.rand([2, 1, 4, 4]), pha, fgr)
    assert set(refine) == {'pha_l1', 'pha_l1_sm', 'pha_sobel', 'pha_sobel_sm', 'fgr_l1', 'fgr_l1_sm', 'err_mse'}


def soft_disc_alpha(size=96):
    """A disc with a soft rim and a translucent patch: foreground, background and every level between."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size * 0.45, xx - size * 0.55)
    alpha = np.clip((size * 0.3 - r) / 6, 0, 1)
    alpha[5:15, 5:40] = 0.5
    return alpha.astype(np.float32)


def test_unknown_region_is_the_evaluation_trimaps_unknown_region():
    alpha = soft_disc_alpha()
    # Quantised to 8 bit as make_trimap does, so that both see the same levels.
    alpha = np.round(alpha * 255) / 255
    trimap = make_trimap(alpha)
    assert set(np.unique(trimap)) == {0, UNKNOWN, 255}
    expected = trimap == UNKNOWN
    got = unknown_region(paddle.to_tensor(alpha[None, None])).numpy()[0, 0]
    assert np.array_equal(got.astype(bool), expected)


def test_foreground_region_is_the_evaluation_trimaps_foreground():
    alpha = np.round(soft_disc_alpha() * 255) / 255
    expected = make_trimap(alpha) == 255
    assert expected.any()
    got = foreground_region(paddle.to_tensor(alpha[None, None])).numpy()[0, 0]
    assert np.array_equal(got.astype(bool), expected)


def test_foreground_term_is_the_mean_error_there_and_leaves_the_others_alone():
    rng = np.random.default_rng(4)
    true = np.stack([soft_disc_alpha(), np.zeros((96, 96), np.float32)])[:, None]
    true = np.round(true * 255) / 255
    # A hole punched into the subject and noise everywhere.
    pred = np.clip(true + rng.normal(0, 0.1, true.shape), 0, 1).astype(np.float32)
    pred[0, 0, 40:50, 50:60] = 0
    fgr = rng.random((2, 3, 96, 96)).astype(np.float32)
    t = [paddle.to_tensor(a) for a in (pred, fgr, np.zeros_like(true), true, fgr)]
    official = loss_terms_base(*t)
    both = loss_terms_base(*t, unknown_weight=1.5, foreground_weight=2.0)
    assert {k: float(v) for k, v in official.items()} == {k: float(both[k]) for k in official}
    mask = np.stack([make_trimap(a[0]) == 255 for a in true])[:, None]
    expected = 2.0 * np.abs(pred - true)[mask].mean()
    assert float(both['pha_l1_foreground']) == pytest.approx(float(expected), rel=1e-5)
    assert float(both['pha_l1_unknown']) == pytest.approx(
        float(loss_terms_base(*t, unknown_weight=1.5)['pha_l1_unknown']), rel=1e-6)
    # The hole costs: it is the largest error in the definite foreground.
    unholed = pred.copy()
    unholed[0, 0, 40:50, 50:60] = true[0, 0, 40:50, 50:60]
    t_unholed = [paddle.to_tensor(unholed)] + t[1:]
    assert float(loss_terms_base(*t_unholed, foreground_weight=2.0)['pha_l1_foreground']) < expected / 2
    # The refine stage scores it at full resolution.
    sm = paddle.nn.functional.interpolate(t[0], size=[24, 24], mode='bilinear')
    refine = loss_terms_refine(t[0], t[1], sm, paddle.rand([2, 3, 24, 24]), paddle.rand([2, 1, 24, 24]),
                               t[3], t[1], foreground_weight=2.0)
    assert float(refine['pha_l1_foreground']) == pytest.approx(float(expected), rel=1e-5)
    assert 'pha_l1_unknown' not in refine


def test_unknown_region_term_is_the_mean_error_there_and_absent_by_default():
    rng = np.random.default_rng(3)
    true = np.stack([soft_disc_alpha(), np.zeros((96, 96), np.float32)])[:, None]  # one image has no subject
    pred = np.clip(true + rng.normal(0, 0.2, true.shape), 0, 1).astype(np.float32)
    fgr = rng.random((2, 3, 96, 96)).astype(np.float32)
    t = [paddle.to_tensor(a) for a in (pred, fgr, np.zeros_like(true), true, fgr)]
    official = loss_terms_base(*t)
    assert 'pha_l1_unknown' not in official
    weighted = loss_terms_base(*t, unknown_weight=2.5)
    # The official terms are unchanged; the new one is the weight times the mean error over the
    # unknown pixels of the whole batch.
    assert {k: float(v) for k, v in official.items()} == {k: float(weighted[k]) for k in official}
    mask = np.stack([make_trimap(a[0]) == UNKNOWN for a in true])[:, None]
    expected = 2.5 * np.abs(pred - true)[mask].mean()
    assert float(weighted['pha_l1_unknown']) == pytest.approx(float(expected), rel=1e-5)
    # Zero for a perfect prediction and for a batch without any unknown pixel.
    assert float(loss_terms_base(t[3], *t[1:], unknown_weight=1)['pha_l1_unknown']) == 0
    empty = paddle.zeros([1, 1, 32, 32])
    assert float(loss_terms_base(empty + 0.3, paddle.zeros([1, 3, 32, 32]), empty, empty,
                                 paddle.zeros([1, 3, 32, 32]), unknown_weight=1)['pha_l1_unknown']) == 0
    # The refine stage scores it at full resolution.
    sm = paddle.nn.functional.interpolate(t[0], size=[24, 24], mode='bilinear')
    refine = loss_terms_refine(t[0], t[1], sm, paddle.rand([2, 3, 24, 24]), paddle.rand([2, 1, 24, 24]),
                               t[3], t[1], unknown_weight=2.5)
    assert float(refine['pha_l1_unknown']) == pytest.approx(float(expected), rel=1e-5)


def test_extra_error_term_repeats_the_error_term_without_moving_the_coarse_alpha():
    paddle.seed(5)
    true_pha = paddle.to_tensor(np.round(soft_disc_alpha()[None, None] * 255) / 255)
    fgr = paddle.rand([1, 3, 96, 96])
    pha_sm = paddle.rand([1, 1, 24, 24])
    err_sm = paddle.rand([1, 1, 24, 24])
    pha_sm.stop_gradient = err_sm.stop_gradient = False
    official = loss_terms_refine(true_pha, fgr, pha_sm, fgr[:, :, ::4, ::4], err_sm, true_pha, fgr)
    assert 'err_mse_extra' not in official
    terms = loss_terms_refine(true_pha, fgr, pha_sm, fgr[:, :, ::4, ::4], err_sm, true_pha, fgr, error_weight=4)
    assert {k: float(v) for k, v in official.items()} == {k: float(terms[k]) for k in official}
    assert float(terms['err_mse_extra']) == pytest.approx(4 * float(terms['err_mse']), rel=1e-6)
    # The official term's target is not detached, so it moves pha_sm; the extra one moves only err_sm.
    grad_pha, grad_err = paddle.grad(terms['err_mse_extra'], [pha_sm, err_sm], allow_unused=True)
    assert grad_pha is None or float(paddle.abs(grad_pha).max()) == 0
    assert float(paddle.abs(grad_err).max()) > 0
    assert float(paddle.abs(paddle.grad(terms['err_mse'], [pha_sm])[0]).max()) > 0
    base = loss_terms_base(true_pha, fgr, paddle.rand([1, 1, 96, 96]), true_pha, fgr, error_weight=2)
    assert float(base['err_mse_extra']) == pytest.approx(2 * float(base['err_mse']), rel=1e-6)


def test_optional_loss_weights_reach_the_training_loss(tmp_path, capsys):
    from visualdl import LogReader
    args = tiny_args(tmp_path, 'regions', 'refine', '--loss-unknown-weight', '3', '--loss-foreground-weight', '2',
                     '--loss-error-weight', '5', '--max-steps', '2')
    assert train.main(args) == 0
    assert 'unknown-region loss x3, foreground loss x2, extra error loss x5, ' in capsys.readouterr().out
    files = glob.glob(str(tmp_path / 'log' / 'regions' / 'vdlrecords.*'))
    for term in ('pha_l1_unknown', 'pha_l1_foreground', 'err_mse_extra'):
        values = [r.value for r in LogReader(file_path=files[0]).get_data('scalar', f'train/loss_{term}')]
        assert len(values) == 2 and all(v > 0 for v in values), term


@pytest.mark.parametrize('stage', ['base', 'refine'])
def test_optimizer_uses_the_papers_learning_rate_per_part(stage):
    paddle.seed(0)
    model = new_model(model_args(stage))
    optimizer = build_optimizer(model, STAGES[stage]['lrs'])
    before = {part: getattr(model, part).parameters()[0].numpy().copy() for part in STAGES[stage]['lrs']}
    # Batch 2 and 128 px: big enough that no BatchNorm normalises a single value (zero gradient).
    src = paddle.rand([2, 3, 128, 128])
    loss, _, _ = forward_losses(model, stage, src, paddle.rand([2, 3, 128, 128]), paddle.rand([2, 1, 128, 128]), src)
    loss.backward()
    optimizer.step()
    for part, lr in STAGES[stage]['lrs'].items():
        # Adam's first step moves every weight with a non-negligible gradient by ~lr.
        change = np.abs(getattr(model, part).parameters()[0].numpy() - before[part])
        assert np.median(change[change > 0]) == pytest.approx(lr, rel=0.05), part


def test_batches_are_a_function_of_seed_epoch_and_index():
    from dataset.synthetic import SyntheticMattingDataset
    data = SyntheticMattingDataset(8, (32, 32), seed=0)
    from dataset.batches import BatchAugment
    a = MattingBatches(data, 2, seed=5, augment=BatchAugment((16, 32)))
    b = MattingBatches(data, 2, seed=5, augment=BatchAugment((16, 32)))
    a.set_epoch(1)
    b.set_epoch(1, start=2)  # a resumed epoch: item 0 is batch 2
    assert len(a) == 4 and len(b) == 2
    for x, y in zip(a[2], b[0]):
        np.testing.assert_array_equal(x, y)
    b.set_epoch(2)
    assert not np.array_equal(a[0][0], b[0][0]) or a[0][0].shape != b[0][0].shape
    src, bgr, pha, fgr = a[0]
    assert src.shape[:2] == (2, 3) and pha.shape[1] == 1 and src.shape[2] % 4 == 0 and 16 <= src.shape[2] < 32


# ---------------------------------------------------------------------------------------------
# Learning
# ---------------------------------------------------------------------------------------------

def test_overfitting_a_tiny_batch_lowers_the_loss_several_fold():
    from dataset.synthetic import SyntheticMattingDataset
    paddle.seed(0)
    model = new_model(model_args('base'))
    model.train()
    optimizer = build_optimizer(model, STAGES['base']['lrs'])
    batch = [paddle.to_tensor(x) for x in MattingBatches(SyntheticMattingDataset(2, (64, 64), seed=3), 2,
                                                         shuffle=False)[0]]
    losses = []
    for _ in range(30):
        loss, _, _ = forward_losses(model, 'base', *batch)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        losses.append(float(loss))
    assert losses[-1] < losses[0] / 4, losses


# ---------------------------------------------------------------------------------------------
# Runs: logs, checkpoints, resume, interrupt
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def logged_run(tmp_path_factory):
    """A 4-step base run that logs everything (losses, lrs, validation, images) and checkpoints twice."""
    tmp = tmp_path_factory.mktemp('logged')
    status = train.main(tiny_args(tmp, 'logged', 'base', '--log-valid-interval', '2',
                                  '--log-train-images-interval', '2', '--checkpoint-interval', '2'))
    assert status == 0
    return tmp


def test_run_writes_visualdl_logs(logged_run):
    from visualdl import LogReader
    files = glob.glob(str(logged_run / 'log' / 'logged' / 'vdlrecords.*'))
    assert len(files) == 1
    tags = LogReader(file_path=files[0]).get_tags()
    for tag in ('train/loss', 'train/loss_pha_l1', 'train/loss_pha_sobel', 'train/loss_fgr_l1', 'train/loss_err_mse',
                'lr/backbone', 'lr/aspp', 'lr/decoder', 'valid/loss', 'valid/SAD', 'valid/MSE'):
        assert tag in tags['scalar'], tag
    for tag in ('train/pha', 'train/fgr', 'train/com', 'train/err', 'valid/pha'):
        assert tag in tags['image'], tag
    steps = [r.id for r in LogReader(file_path=files[0]).get_data('scalar', 'valid/SAD')]
    assert steps == [2, 4]


def test_run_writes_full_checkpoints_and_a_latest_pointer(logged_run):
    folder = logged_run / 'checkpoint' / 'logged'
    assert sorted(os.listdir(folder)) == ['epoch-0-step-2.pdparams', 'epoch-0.pdparams', 'latest']
    assert (folder / 'latest').read_text().strip() == 'epoch-0.pdparams'
    state = load_checkpoint(str(folder))
    assert state['meta']['step'] == 4 and state['meta']['epoch'] == 0 and state['meta']['batch'] == 4
    assert state['meta']['lrs'] == dict(STAGES['base']['lrs'])
    assert any(k.startswith('backbone.') and '::moment1' in k for k in state['optimizer'])
    # Loadable as plain weights too (predict.py, the next stage).
    from model.weights import load_weights
    weights, config = load_weights(str(folder / 'epoch-0.pdparams'))
    assert config['backbone'] == 'mobilenetv2' and config['model_type'] == 'base'
    assert not list(glob.glob(str(folder / '*.tmp*')))


def test_validation_subset_is_fixed():
    """Runs with different seeds validate on the very same images, so their numbers are comparable."""
    from dataset.batches import build_datasets
    _, valid_a = build_datasets('synthetic', (64, 64), 2, seed=0)
    _, valid_b = build_datasets('synthetic', (64, 64), 2, seed=7)
    for x, y in zip(as_list(valid_a), as_list(valid_b)):
        np.testing.assert_array_equal(x, y)


def as_list(dataset):
    return [np.concatenate([np.ravel(a) for a in dataset[i]]) for i in range(len(dataset))]


@pytest.mark.parametrize('stage', ['base', 'refine'])
def test_four_steps_equal_two_steps_resume_two_steps(tmp_path, stage):
    assert train.main(tiny_args(tmp_path, 'straight', stage)) == 0
    assert train.main(tiny_args(tmp_path, 'resumed', stage, '--max-steps', '2')) == 0
    assert load_checkpoint(str(tmp_path / 'checkpoint' / 'resumed'))['meta']['step'] == 2
    # --lr-scale is ignored on resume: the saved learning rates are restored (else the weights would differ).
    assert train.main(tiny_args(tmp_path, 'resumed', stage, '--resume', '--lr-scale', '10')) == 0
    a = load_checkpoint(str(tmp_path / 'checkpoint' / 'straight'))
    b = load_checkpoint(str(tmp_path / 'checkpoint' / 'resumed'))
    assert a['meta']['step'] == b['meta']['step'] == 4
    assert max_state_diff(as_numpy(a['model']), as_numpy(b['model'])) < 1e-6
    assert max_state_diff(as_numpy(a['optimizer']), as_numpy(b['optimizer'])) < 1e-6


def test_resume_of_a_finished_run_does_nothing(tmp_path, capsys):
    assert train.main(tiny_args(tmp_path, 'done', 'base', steps_per_epoch=2)) == 0
    before = load_checkpoint(str(tmp_path / 'checkpoint' / 'done'))
    assert train.main(tiny_args(tmp_path, 'done', 'base', '--resume', steps_per_epoch=2)) == 0
    assert 'nothing to do' in capsys.readouterr().out
    after = load_checkpoint(str(tmp_path / 'checkpoint' / 'done'))
    assert max_state_diff(as_numpy(before['model']), as_numpy(after['model'])) == 0


def test_max_seconds_stops_with_a_checkpoint_and_resume_goes_on(tmp_path, capsys):
    assert train.main(tiny_args(tmp_path, 'timed', 'base', '--max-seconds', '0.001', steps_per_epoch=10)) == 0
    assert '--max-seconds 0.001 reached at step 1; continue with --resume' in capsys.readouterr().out
    assert load_checkpoint(str(tmp_path / 'checkpoint' / 'timed'))['meta']['step'] == 1
    assert train.main(tiny_args(tmp_path, 'timed', 'base', '--resume', '--max-seconds', '600',
                                steps_per_epoch=10)) == 0
    assert load_checkpoint(str(tmp_path / 'checkpoint' / 'timed'))['meta']['step'] == 10


def run_until(cmd, marker, sig, group=False):
    """Start train.py, send `sig` once `marker` is printed; returns (exit status, output)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if marker in line:
                if group:  # Ctrl+C in a terminal: the whole process group, DataLoader workers included
                    os.killpg(proc.pid, sig)
                else:
                    proc.send_signal(sig)
                break
        lines.append(proc.stdout.read())
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, ''.join(lines)


def test_sigterm_saves_a_checkpoint_and_resume_matches_an_uninterrupted_run(tmp_path):
    args = tiny_args(tmp_path, 'stopped', 'base', steps_per_epoch=10)
    status, out = run_until([sys.executable, 'train.py', *args], 'step: 2,', signal.SIGTERM)
    assert status == 128 + signal.SIGTERM, out
    assert 'SIGTERM received' in out and 'Traceback' not in out
    stopped = load_checkpoint(str(tmp_path / 'checkpoint' / 'stopped'))
    k = stopped['meta']['step']
    assert 2 <= k < 10
    assert f'stopped by SIGTERM at step {k}' in out

    assert train.main(tiny_args(tmp_path, 'stopped', 'base', '--resume', steps_per_epoch=10)) == 0
    assert train.main(tiny_args(tmp_path, 'straight', 'base', steps_per_epoch=10)) == 0
    a = load_checkpoint(str(tmp_path / 'checkpoint' / 'straight'))
    b = load_checkpoint(str(tmp_path / 'checkpoint' / 'stopped'))
    assert b['meta']['step'] == 10
    assert max_state_diff(as_numpy(a['model']), as_numpy(b['model'])) < 1e-6


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_signal_to_the_process_group_with_dataloader_workers_saves_a_checkpoint(tmp_path, sig):
    """Ctrl+C in a terminal, `timeout` and job schedulers signal the DataLoader workers too."""
    args = tiny_args(tmp_path, 'group', 'base', '--num-workers', '1', steps_per_epoch=10)
    status, out = run_until([sys.executable, 'train.py', *args], 'step: 1,', sig, group=True)
    assert status == 128 + sig, out
    name = signal.Signals(sig).name
    assert 'Traceback' not in out and out.count(f'{name} received') == 1
    assert load_checkpoint(str(tmp_path / 'checkpoint' / 'group'))['meta']['step'] >= 1


# ---------------------------------------------------------------------------------------------
# Starting points and bad input
# ---------------------------------------------------------------------------------------------

def test_refine_stage_starts_from_the_base_checkpoint_folder(logged_run, tmp_path, capsys):
    base_folder = str(logged_run / 'checkpoint' / 'logged')
    assert train.main(tiny_args(tmp_path, 'refine', 'refine', '--model-last-checkpoint', base_folder,
                                '--max-steps', '1', '--plate-change', 'light', '--shadow-prob', '0')) == 0
    out = capsys.readouterr().out
    # Everything but the refiner (and its BatchNorm statistics) comes from the base checkpoint.
    assert 'epoch-0.pdparams: 302/319 entries matched' in out
    assert 'plate change light, shadows p=0,' in out


def test_refine_stage_starts_from_an_official_pth(tmp_path, capsys):
    # The official-format reference checkpoint shared beside the project (see tests/conftest.py).
    reference = os.environ.get('BGMV2_REFERENCE', os.path.join(os.path.dirname(ROOT), 'shared', 'reference'))
    reference_weights = os.path.join(reference, 'mobilenetv2', 'weights.pth')
    if not os.path.isfile(reference_weights):
        pytest.skip(f'no official-format reference weights at {reference_weights}')
    assert train.main(tiny_args(tmp_path, 'from-pth', 'refine', '--model-last-checkpoint', reference_weights,
                                '--max-steps', '1')) == 0
    assert '319/319 entries matched' in capsys.readouterr().out


def test_base_stage_starts_from_pretrained_weights(tmp_path, capsys):
    """--model-pretrain-initialization with a .pdparams holding part of MattingBase (as the
    DeepLabV3 conversion gives: backbone and ASPP, no decoder)."""
    from utils.convert_weights import save_pdparams
    paddle.seed(1)
    donor = new_model(model_args('base')).state_dict()
    partial = {k: v.numpy() for k, v in donor.items() if k.startswith(('backbone.', 'aspp.'))}
    path = str(tmp_path / 'deeplabv3.pdparams')
    save_pdparams(partial, path)
    assert train.main(tiny_args(tmp_path, 'pretrained', 'base', '--model-pretrain-initialization', path,
                                '--max-steps', '1')) == 0
    assert f'Initialised from {path}: {len(partial)}/' in capsys.readouterr().out


def test_missing_dataset_folder_names_the_data_path_entry(tmp_path, capsys):
    args = tiny_args(tmp_path, 'nodata', 'base')
    args[args.index('synthetic')] = 'videomatte240k'
    assert train.main(args + ['--data-root', str(tmp_path / 'nowhere')]) == 2
    err = capsys.readouterr().err
    assert "DATA_PATH['videomatte240k']['train']" in err and str(tmp_path / 'nowhere') in err
    assert not os.path.exists(tmp_path / 'checkpoint' / 'nodata')


@pytest.mark.parametrize('extra, message', [
    (['--batch-size', '64'], 'fewer than one batch'),
    (['--amp'], '--amp needs --device gpu'),
    (['--crop-size', '64', '48'], '--crop-size takes MIN MAX'),
    (['--epoch-start', '3'], '--epoch-end (1) must be greater'),
    (['--max-seconds', '-5'], '--max-seconds must be 0 (no limit) or positive'),
    (['--loss-unknown-weight', '-1'], '--loss-unknown-weight must be 0 (off) or positive'),
    (['--loss-foreground-weight', '-0.5'], '--loss-foreground-weight must be 0 (off) or positive'),
    (['--loss-error-weight', '-2'], '--loss-error-weight must be 0 (off) or positive'),
    (['--real-kinds', 'translucent=0.3'], '--real-kinds sets the foreground mix of --dataset-name real'),
    (['--shadow-prob', '1.5'], '--shadow-prob is a probability: give a value from 0 to 1, got 1.5'),
    (['--model-last-checkpoint', 'no/such/file.pdparams'], 'no such checkpoint file or folder'),
    (['--model-pretrain-initialization', 'no/such/deeplab.pdparams'], 'no such file'),
])
def test_bad_options_exit_2_with_a_message(tmp_path, capsys, extra, message):
    assert train.main(tiny_args(tmp_path, 'bad', 'base', *extra)) == 2
    assert message in capsys.readouterr().err


def test_refine_sample_size_must_be_divisible_by_4(tmp_path, capsys):
    args = tiny_args(tmp_path, 'bad', 'refine')
    args[args.index('--sample-size') + 1] = '66'
    assert train.main(args) == 2
    assert 'divisible by 4' in capsys.readouterr().err


def test_resume_refuses_a_checkpoint_of_another_stage_or_backbone(logged_run, tmp_path, capsys):
    # Resuming 'logged' (a base run) as a refine run must not mix the two.
    args = tiny_args(logged_run, 'logged', 'refine', '--resume')
    assert train.main(args) == 2
    assert 'is a base mobilenetv2 checkpoint' in capsys.readouterr().err
    args = tiny_args(tmp_path, 'other', 'base', '--model-last-checkpoint', str(logged_run / 'checkpoint' / 'logged'))
    args[args.index('mobilenetv2')] = 'resnet50'
    assert train.main(args) == 2
    assert 'holds mobilenetv2 weights' in capsys.readouterr().err


def test_latest_pointer_to_a_missing_file_is_reported(tmp_path, capsys):
    folder = tmp_path / 'checkpoint' / 'broken'
    folder.mkdir(parents=True)
    (folder / 'latest').write_text('epoch-9.pdparams\n')
    assert train.main(tiny_args(tmp_path, 'broken', 'base', '--resume')) == 2
    assert 'epoch-9.pdparams' in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Data parallel
# ---------------------------------------------------------------------------------------------

def launch_two_cpu_processes(tmp_path, args):
    """Run train.py under paddle.distributed.launch with 2 CPU processes; returns {rank: checksum}."""
    launch_log = tmp_path / 'launch'
    proc = subprocess.run([sys.executable, '-m', 'paddle.distributed.launch', '--nproc_per_node', '2',
                           '--log_dir', str(launch_log), 'train.py', *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    logs = {p: open(p).read() for p in glob.glob(str(launch_log / 'workerlog.*'))}
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + ''.join(logs.values())[-3000:]
    checksums = {}
    for text in logs.values():
        for line in text.splitlines():
            if 'trainable parameter checksum' in line:
                rank = line.split('rank ')[1].split(':')[0]
                checksums[rank] = line.rsplit(' ', 1)[1]
    return checksums


def test_two_cpu_processes_with_paddle_distributed_launch(tmp_path):
    """DataParallel over 2 CPU processes (gloo): both ranks end with identical trainable weights."""
    args = tiny_args(tmp_path, 'dp', 'refine', steps_per_epoch=4)  # 8 samples
    args[args.index('--batch-size') + 1] = '4'  # total: 2 per process, so 2 steps
    checksums = launch_two_cpu_processes(tmp_path, args)
    assert set(checksums) == {'0', '1'} and checksums['0'] == checksums['1'], checksums
    state = load_checkpoint(str(tmp_path / 'checkpoint' / 'dp'))
    assert state['meta']['world_size'] == 2 and state['meta']['step'] == 2


def test_max_seconds_stops_both_cpu_processes_at_the_same_step(tmp_path):
    """The time limit of tools/train_real.sh: every rank stops at one step, and it is saved."""
    args = tiny_args(tmp_path, 'dp-timed', 'refine', '--max-seconds', '0.001', steps_per_epoch=20)
    args[args.index('--batch-size') + 1] = '4'
    checksums = launch_two_cpu_processes(tmp_path, args)
    assert set(checksums) == {'0', '1'} and checksums['0'] == checksums['1'], checksums
    assert load_checkpoint(str(tmp_path / 'checkpoint' / 'dp-timed'))['meta']['step'] == 1


def test_prune_keeps_the_newest_the_latest_and_epoch_ends(tmp_path):
    from utils.training.checkpoint import LATEST, prune_checkpoints
    names = ['epoch-0-step-100.pdparams', 'epoch-0-step-200.pdparams', 'epoch-0.pdparams',
             'epoch-1-step-300.pdparams', 'epoch-1-step-400.pdparams', 'epoch-1-step-500.pdparams']
    for name in names:
        (tmp_path / name).write_bytes(b'x')
    # `latest` names an older checkpoint (e.g. after a resume from it): it must survive
    (tmp_path / LATEST).write_text('epoch-0-step-100.pdparams\n')
    prune_checkpoints(str(tmp_path), keep=2)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(['epoch-0-step-100.pdparams', 'epoch-0.pdparams', 'epoch-1-step-400.pdparams',
                           'epoch-1-step-500.pdparams', LATEST])
    prune_checkpoints(str(tmp_path), keep=0)  # 0 keeps everything
    assert len(list(tmp_path.iterdir())) == len(left)
