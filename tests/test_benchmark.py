"""benchmark.py: a tiny run produces one valid JSON line per configuration (no timing checks)."""
import json
import os
import subprocess
import sys

import numpy as np

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


def test_profile_splits_the_model_into_its_parts(tmp_path):
    from utils.deploy.part_timing import PARTS
    command = [sys.executable, os.path.join(ROOT, 'benchmark.py'), '--resolution', '160x128',
               '--sample-pixels', '400', '--engine', 'onnxruntime', 'dygraph', '--runs', '1',
               '--warmup', '1', '--threads', '2', '--profile-only', '--cache-dir', str(tmp_path)]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{')]
    assert [(r['kind'], r['engine_used']) for r in lines] == [('profile', 'onnxruntime'),
                                                              ('profile', 'dygraph')]
    for result in lines:
        assert list(result['parts_ms']) == list(PARTS)
        assert all(ms >= 0 for ms in result['parts_ms'].values()) and result['sum_ms'] > 0
        assert result['whole_ms'] > 0 and result['refined_patches_per_image'] == 25
        assert result['machine']['cpu'] and 'cpu_flags' in result['machine']


def test_conv_flops_count_the_functional_convolutions_too():
    """Layer hooks alone miss the decoder's convs (called through F.conv2d with the layers'
    weights); the count matches the decoder's and the refiner's shapes worked out by hand."""
    import paddle
    from model import MattingRefine
    from utils.deploy.part_timing import conv_flops
    paddle.seed(0)
    model = MattingRefine('mobilenetv2', backbone_scale=0.25, refine_mode='sampling',
                          refine_sample_pixels=16 * 10, refine_prevent_oversampling=False)
    model.eval()
    src = np.random.default_rng(0).random((1, 3, 256, 384), dtype=np.float32)
    flops = conv_flops(model, src, src * 0.5)
    hooked = [0]

    def hook(layer, inputs, out):
        hooked[0] += 2 * int(np.prod(out.shape)) * int(np.prod(layer.weight.shape[1:]))
    hooks = [m.register_forward_post_hook(hook) for m in model.sublayers()
             if isinstance(m, paddle.nn.Conv2D)]
    with paddle.no_grad():
        model.coarse(paddle.to_tensor(src), paddle.to_tensor(src * 0.5))
    for h in hooks:
        h.remove()
    # the decoder's four stages at 1/8, 1/4, 1/2 and 1 of the 64x96 base input
    d = model.decoder
    decoder = sum(2 * conv.weight.shape[0] * (64 // f) * (96 // f) * int(np.prod(conv.weight.shape[1:]))
                  for conv, f in ((d.conv1, 8), (d.conv2, 4), (d.conv3, 2), (d.conv4, 1)))
    assert abs(flops['base_gflop'] * 1e9 - (hooked[0] + decoder)) < 0.006e9
    # refiner: 10 patches through conv1/conv2 (pixels) and conv3/conv4 in block space, plus the
    # tables of the crop (2 images x (3 means + 12 pixels) x 12 multiply-adds per 2x2 block)
    per_patch = 24 * 36 * 42 * 9 + 16 * 16 * 24 * 9 + 48 * 9 * (16 + 24) * 4 + 16 * 4 * 48 * 4
    tables = 2 * (3 * 134 * 198 + 12 * 130 * 194) * 12
    assert abs(flops['refiner_gflop'] * 1e9 - 2 * (10 * per_patch + tables)) < 0.006e9


FAKE_OFFICIAL = '''
import json, sys, time
cfg = json.loads(sys.argv[1])
print(json.dumps({"ready": True, "torch": "fake", "refined_patches": cfg["sample_pixels"] // 16}), flush=True)
for line in sys.stdin:
    if not line.strip():
        break
    print(json.dumps({"ms": [50.0] * int(line)}), flush=True)
'''


def test_versus_official_interleaves_workers_and_reports_ratios(tmp_path):
    """The protocol with a stand-in for the official worker (torch is not installed here)."""
    from utils.deploy.compare import compare_row
    worker = tmp_path / 'official.py'
    worker.write_text(FAKE_OFFICIAL)
    args = build_parser().parse_args(['--resolution', '160x128', '--sample-pixels', '400',
                                      '--engine', 'dygraph', 'onnxruntime', '--warmup', '1',
                                      '--threads', '2', '--cache-dir', str(tmp_path / 'cache')])
    rows = compare_row(configurations(args), sys.executable, rounds=2, runs=2,
                       official_worker=str(worker))
    assert [(r['kind'], r['engine_used']) for r in rows] == [('versus_official', 'dygraph'),
                                                             ('versus_official', 'onnxruntime')]
    for row in rows:
        assert row['official_median_ms'] == 50.0 and row['official_torch'] == 'fake'
        assert abs(row['ratio'] - row['median_ms'] / 50.0) <= 0.002
        assert 0 < row['round_ratio_min'] <= row['round_ratio_max']
        assert row['refined_patches_per_image'] == row['official_refined_patches'] == 25
        assert row['rounds'] == 2 and row['runs_per_round'] == 2 and row['machine']['cpu_flags'] is not None
