"""Tests of run.sh: the three-stage chain on synthetic data, and its stops on missing data or a failing stage.

The chain runs at the smallest sizes (64 px, one short epoch per stage) to stay within a
minute or two on a CPU; `DATASET=synthetic sh run.sh` with its own defaults is the
few-minute demonstration.
"""
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = ('--batch-size 2 --sample-size 64 --crop-size 48 64 --synthetic-length 4 --valid-samples 2 '
        '--num-workers 0 --no-progress --log-train-loss-interval 1 --log-valid-interval 2 '
        '--log-train-images-interval 2 --checkpoint-interval 2')


def run_sh(tmp_path, **env):
    """Run `sh run.sh` with checkpoints and logs under tmp_path; returns the CompletedProcess."""
    full = dict(os.environ, CHECKPOINT_DIR=str(tmp_path / 'checkpoint'), LOG_DIR=str(tmp_path / 'log'), **env)
    return subprocess.run(['sh', 'run.sh'], cwd=ROOT, env=full, capture_output=True, text=True, timeout=900)


def tiny_synthetic_env(**extra):
    env = {'DATASET': 'synthetic'}
    for n in (1, 2, 3):
        env[f'STAGE{n}_EPOCHS'] = '1'
        env[f'STAGE{n}_ARGS'] = TINY + (' --model-refine-sample-pixels 1024' if n > 1 else '')
    env.update(extra)
    return env


@pytest.fixture(scope='module')
def chain(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('chain')
    return tmp, run_sh(tmp, **tiny_synthetic_env())


def test_synthetic_chain_trains_three_stages_each_from_the_previous(chain):
    tmp, proc = chain
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    names = ['stage1-mattingbase-mobilenetv2-synthetic', 'stage2-mattingrefine-mobilenetv2-synthetic',
             'stage3-mattingrefine-mobilenetv2-synthetic']
    for name in names:
        assert (tmp / 'checkpoint' / name / 'latest').read_text().strip() == 'epoch-0.pdparams'
        assert any(f.startswith('vdlrecords.') for f in os.listdir(tmp / 'log' / name))
    # Stages run in order, each loading the previous stage's last checkpoint.
    positions = [out.index(f'==> stage {n} ') for n in (1, 2, 3)]
    assert positions == sorted(positions)
    assert f'Loaded {tmp}/checkpoint/{names[0]}/epoch-0.pdparams: 302/319 entries matched' in out
    assert f'Loaded {tmp}/checkpoint/{names[1]}/epoch-0.pdparams: 319/319 entries matched' in out
    assert '[TRAIN] stage base' in out and out.count('[TRAIN] stage refine') == 2
    assert f'final model: {tmp}/checkpoint/{names[2]}/epoch-0.pdparams' in out
    assert 'avg_reader_cost' in out and 'ips' in out and '[VALID]' in out


def test_chain_plot_is_written(chain):
    pytest.importorskip('matplotlib')
    tmp, proc = chain
    assert (tmp / 'log' / 'chain-loss.png').stat().st_size > 0


def test_rerunning_a_finished_chain_does_nothing(chain):
    tmp, _ = chain
    proc = run_sh(tmp, **tiny_synthetic_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count('nothing to do') == 3
    assert 'saved' not in proc.stdout


def test_missing_data_folder_stops_before_any_training(tmp_path):
    proc = run_sh(tmp_path, DATASET='paper', DATA_ROOT=str(tmp_path / 'nowhere'))
    assert proc.returncode == 2
    assert "DATA_PATH['videomatte240k']['train']" in proc.stderr
    assert 'a data set of the chain is missing' in proc.stderr
    assert not (tmp_path / 'checkpoint').exists()


def test_a_failing_stage_stops_the_chain(tmp_path):
    proc = run_sh(tmp_path, **tiny_synthetic_env(STAGE1_ARGS=TINY + ' --crop-size 64 48'))
    assert proc.returncode == 2
    assert 'stage 1 (MattingBase on synthetic) (stage1-mattingbase-mobilenetv2-synthetic) failed' in proc.stderr
    assert '==> stage 2' not in proc.stdout


def test_unknown_dataset_preset_is_refused(tmp_path):
    proc = run_sh(tmp_path, DATASET='imagenet')
    assert proc.returncode == 2 and "DATASET must be 'paper' or 'synthetic'" in proc.stderr


def test_official_pth_is_converted_to_start_stage_1(tmp_path):
    reference = os.environ.get('BGMV2_REFERENCE', os.path.join(os.path.dirname(ROOT), 'shared', 'reference'))
    weights = os.path.join(reference, 'mobilenetv2', 'weights.pth')
    if not os.path.isfile(weights):
        pytest.skip(f'no official-format reference weights at {weights}')
    # Stage 2 is made to fail so that only stage 1 runs.
    proc = run_sh(tmp_path, START_PTH=weights, **tiny_synthetic_env(STAGE2_ARGS=TINY + ' --crop-size 64 48'))
    converted = tmp_path / 'checkpoint' / 'start' / 'weights.pdparams'
    assert f'==> converting {weights} -> {converted}' in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f'Loaded {converted}: 302/302 entries matched' in proc.stdout
    assert proc.returncode == 2 and 'stage 2 (MattingRefine on synthetic)' in proc.stderr
