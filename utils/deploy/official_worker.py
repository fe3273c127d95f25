"""Times the official PyTorch MattingRefine on request, for utils.deploy.compare.

Runs in a Python that has torch and the official model code (PyPI's `backgroundmattingv2`, the
official repository's model/ package; or a checkout named by the settings' "official" key),
not this project's environment: it imports nothing of the project.

    python official_worker.py '{"backbone": "mobilenetv2", "width": 1920, "height": 1080,
                                "backbone_scale": 0.25, "sample_pixels": 80000, "threads": 2,
                                "warmup": 3}'

Protocol as the official inference_speed_test.py: random-initialised model, uniform random
src/bgr, batch 1, float32, no_grad, refine_prevent_oversampling=False (exactly
sample_pixels / 16 patches refined). After the warm-up it prints {"ready": ...}; then each
line N on stdin runs N timed calls and prints {"ms": [...]}; an empty line or EOF ends it.
"""
import json
import os
import sys
import time


def main():
    # run as a script: its folder (this project's modules) must not shadow anything
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or '.') != here]
    cfg = json.loads(sys.argv[1])
    import torch
    if cfg.get('official'):
        sys.path.insert(0, os.path.abspath(cfg['official']))
        from model import MattingRefine
    else:
        from BackgroundMattingV2.model import MattingRefine
    torch.set_num_threads(cfg['threads'])
    torch.manual_seed(cfg.get('seed', 0))
    model = MattingRefine(cfg['backbone'], backbone_scale=cfg['backbone_scale'], refine_mode='sampling',
                          refine_sample_pixels=cfg['sample_pixels'],
                          refine_prevent_oversampling=False).eval()
    src = torch.rand(cfg.get('batch_size', 1), 3, cfg['height'], cfg['width'])
    bgr = torch.rand(cfg.get('batch_size', 1), 3, cfg['height'], cfg['width'])
    with torch.no_grad():
        for _ in range(cfg.get('warmup', 3)):
            out = model(src, bgr)
        print(json.dumps({'ready': True, 'torch': torch.__version__,
                          'refined_patches': int(out[5].sum().item())}), flush=True)
        serve(lambda: model(src, bgr))


def serve(call):
    """Answer timing requests on stdin: each line N runs call() N times and prints
    {"ms": [...]}; an empty line or EOF ends. The project's engine workers use it too."""
    for line in sys.stdin:
        if not line.strip():
            break
        times = []
        for _ in range(int(line)):
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1000)
        print(json.dumps({'ms': times}), flush=True)


if __name__ == '__main__':
    main()
