"""benchmark.py: a tiny run produces one valid JSON line per configuration (no timing checks)."""
import json
import os
import subprocess
import sys

from conftest import ROOT
from utils.deploy.benchmark import REFERENCE_ROWS, build_parser, configurations


def test_preset_issue4_has_the_five_reference_rows_per_engine():
    args = build_parser().parse_args(['--preset', 'issue4', '--engine', 'dygraph', 'inference'])
    configs = configurations(args)
    assert len(configs) == 2 * len(REFERENCE_ROWS)
    rows = {(c['backbone'], c['resolution'], c['backbone_scale'], c['sample_pixels']) for c in configs}
    assert ('mobilenetv2', '3840x2160', 0.125, 320_000) in rows
    assert ('resnet50', '1920x1080', 0.25, 80_000) in rows
    assert all(c['runs'] == 10 and c['warmup'] == 3 and c['batch_size'] == 1 for c in configs)


def test_tiny_benchmark_run_prints_json_lines(tmp_path):
    output = tmp_path / 'results.jsonl'
    command = [sys.executable, os.path.join(ROOT, 'benchmark.py'), '--resolution', '160x128',
               '--sample-pixels', '400', '--engine', 'dygraph', 'inference', '--runs', '2',
               '--warmup', '1', '--threads', '2', '--video', '--video-frames', '2', '--floor',
               '--cache-dir', str(tmp_path / 'cache'), '--output', str(output)]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{')]
    assert [(r['engine'], r['kind']) for r in lines] == [
        ('dygraph', 'latency'), ('dygraph', 'video'), ('inference', 'latency'), ('inference', 'video'),
        ('inference', 'floor')]  # the floor is measured for the inference engine only
    assert [json.loads(line) for line in output.read_text().splitlines()] == lines
    for result in lines:
        assert 'error' not in result, result
        assert result['resolution'] == '160x128' and result['threads'] == 2
        assert result['peak_rss_mb'] > 0
        assert result['machine']['cpus'] >= 1 and result['machine']['paddle']
        if result['kind'] == 'floor':
            # the convolutions alone: base network + refiner convs on the 25 cropped windows
            assert result['refined_patches_per_image'] == 25
            assert result['base_ms'] > 0 and result['refiner_convs_ms'] > 0
            assert result['floor_ms'] == round(result['base_ms'] + result['refiner_convs_ms'], 1)
            continue
        assert result['fps'] > 0
        if result['kind'] == 'latency':
            assert result['min_ms'] <= result['median_ms'] <= result['max_ms']
            # prevent_oversampling is off: exactly sample_pixels / 16 patches
            assert result['refined_patches_per_image'] == 25
        else:
            assert result['frames'] == 2 and result['infer_ms_per_frame'] > 0


def test_default_threads_are_recorded_as_the_cpus_used():
    from utils.deploy.benchmark import build_parser, configurations
    from utils.deploy.engine import available_cpus
    configs = configurations(build_parser().parse_args(['--resolution', '160x128']))
    assert configs and all(c['threads'] == available_cpus() for c in configs)
    configs = configurations(build_parser().parse_args(['--resolution', '160x128', '--threads', '1']))
    assert all(c['threads'] == 1 for c in configs)
