"""Side by side with the official PyTorch code: interleaved timings and ratios in one run.

    python benchmark.py --vs-official ../venv-official/bin/python --engine auto dygraph \
        --resolution 1280x720 1920x1080 --rounds 8 --runs 4

These machines drift by up to 40 % within minutes, so an absolute time from another moment says
little. Here every engine and the official code each get a warm worker process (built and
warmed up once), and the workers are called in turn, round after round (official, engine 1,
engine 2, official, ...), `runs` calls each per round: drift hits all of them alike. A row's
ratio is its median over all calls divided by the official median; the ratio of each round's
medians shows the spread.

The official side runs utils/deploy/official_worker.py in a Python that has torch and the
official model code (../shared/official-speed/README.md sets one up).
"""
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OFFICIAL_WORKER = os.path.join(ROOT, 'utils', 'deploy', 'official_worker.py')


class Worker:
    """A warm timing process: sends 'N', reads back N call times in ms."""

    def __init__(self, command, env=None):
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        self.info = self._read()
        if 'error' in self.info:
            self.close()
            raise RuntimeError(self.info['error'])

    def _read(self):
        for line in self.process.stdout:
            if line.startswith('{'):
                return json.loads(line)
        error = self.process.stderr.read().strip().splitlines()[-3:]
        return {'error': f'worker exited with {self.process.wait()}: ' + ' | '.join(error)}

    def time(self, runs):
        self.process.stdin.write(f'{runs}\n')
        self.process.stdin.flush()
        reply = self._read()
        if 'error' in reply:
            raise RuntimeError(reply['error'])
        return reply['ms']

    def close(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write('\n')
                self.process.stdin.flush()
            except OSError:
                pass
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def engine_worker_main(cfg):
    """The project side of a Worker: build the engine of a benchmark configuration, warm it up,
    then answer timing requests on stdin (official_worker.serve)."""
    from utils.deploy.benchmark import build_engine, make_inputs
    from utils.deploy.official_worker import serve
    try:
        engine = build_engine(cfg)
        src, bgr = make_inputs(cfg['batch_size'], cfg['height'], cfg['width'])
        for _ in range(cfg['warmup']):
            out = engine(src, bgr)
    except Exception as e:  # reported as a line, like every benchmark failure
        print(json.dumps({'error': f'{type(e).__name__}: {e}'[:500]}), flush=True)
        return 1
    print(json.dumps({'ready': True, 'engine': getattr(engine, 'name', cfg['engine']),
                      'refined_patches': float(out['ref_sm'].sum())}), flush=True)
    serve(lambda: engine(src, bgr))
    return 0


def compare_row(configs, official_python, rounds, runs, official_code=None,
                official_worker=OFFICIAL_WORKER):
    """Time the configurations of one row (same backbone/size/scale/pixels, one per engine)
    interleaved with the official code; returns one result dict per configuration.

    official_python runs official_worker (official_worker.py's protocol) with the row's
    settings as its one argument."""
    from utils.deploy.benchmark import machine
    first = configs[0]
    official_cfg = {k: first[k] for k in ('backbone', 'width', 'height', 'backbone_scale',
                                          'sample_pixels', 'batch_size', 'threads', 'warmup')}
    official_cfg['official'] = official_code
    env = dict(os.environ)
    threads = str(first['threads'])
    env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = threads
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    workers, results = {}, []
    try:
        workers['official'] = Worker([official_python, official_worker, json.dumps(official_cfg)], env)
        for i, cfg in enumerate(configs):
            command = [sys.executable, '-W', 'ignore', '-m', 'utils.deploy.benchmark', '--worker',
                       json.dumps(cfg)]
            try:
                workers[i] = Worker(command, env)
            except RuntimeError as e:
                results.append((i, {'error': str(e)}))
        times = {key: [] for key in workers}
        per_round = {key: [] for key in workers}
        for _ in range(rounds):
            for key, worker in workers.items():
                ms = worker.time(runs)
                times[key] += ms
                per_round[key].append(float(np.median(ms)))
    finally:
        for worker in workers.values():
            worker.close()
    official = float(np.median(times['official']))
    info = machine()
    out = []
    failed = dict(results)
    for i, cfg in enumerate(configs):
        row = {'kind': 'versus_official', **{k: cfg[k] for k in (
            'backbone', 'resolution', 'backbone_scale', 'sample_pixels', 'batch_size', 'engine',
            'precision', 'device', 'threads')}, 'rounds': rounds, 'runs_per_round': runs}
        if i in failed:
            row.update(failed[i])
        else:
            median = float(np.median(times[i]))
            pair = [a / b for a, b in zip(per_round[i], per_round['official'])]
            row.update({
                'engine_used': workers[i].info.get('engine'),
                'median_ms': round(median, 1), 'official_median_ms': round(official, 1),
                'ratio': round(median / official, 3),
                'round_ratio_min': round(min(pair), 3), 'round_ratio_max': round(max(pair), 3),
                'refined_patches_per_image': workers[i].info.get('refined_patches'),
                'official_refined_patches': workers['official'].info.get('refined_patches'),
                'official_torch': workers['official'].info.get('torch'),
            })
        row['machine'] = info
        out.append(row)
    return out
