"""Make tests/data/resnet_reference.npz: outputs of the official PyTorch code for ResNet backbones.

Needs torch + torchvision (not a project dependency; use a separate environment) and the official
BackgroundMattingV2 `model/` package (github.com/PeterL1n/BackgroundMattingV2, commit
a8e82df9f594578edf287dbb2b289ebcc50fbf00), which is imported unmodified from --official:

    python -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch torchvision numpy
    /tmp/torchenv/bin/python tools/make_resnet_reference.py --official /path/to/BackgroundMattingV2

It does not import this project's model package. The weights come from
tests/resnet_reference_weights.py (numpy only, seeded), so tests/test_resnet_parity.py can
regenerate them without torch; only the biases of the two output heads are calibrated here (so
that alpha and error are neither all clamped nor constant) and stored in `meta`. For each backbone, the official `MattingRefine` is run (eval,
no_grad, float32, 2 threads) in 'full', 'sampling' and 'thresholding' mode, and the official
`MattingBase` on the downsampled inputs. The sampling budget k (refine_sample_pixels = 16 k) is
chosen where the gap between the k-th and (k+1)-th largest error is widest, and the threshold
is moved off 0.1 only if an error lies within --min-margin of it, so that a port whose errors
differ by float rounding selects the same patches. Margins are recorded in `meta`.

A larger, uncommitted check (any backbone, mobilenetv2 too), then run the test on it:
    ... make_resnet_reference.py --official DIR --size 512 768 --max-mb 1000 --min-margin 1e-5 \
        --out /tmp/ref_512x768.npz
    BGMV2_RESNET_REFERENCE=/tmp/ref_512x768.npz python -m pytest tests/test_resnet_parity.py -s
(with ~12k patches, neighbouring errors lie ~5e-5 apart, so 1e-4 margins cannot be had there.)

File layout (np.load, no pickle; float32, NCHW, batch 1; h, w = H/4, W/4):
    src, bgr (1,3,H,W); src_sm, bgr_sm (1,3,h,w) (the official downsampling)
    <backbone>/coarse/{pha_sm,fgr_sm,err_sm}   MattingRefine outputs 3-5 (identical in every mode)
    <backbone>/<mode>/{pha,fgr,ref_sm}         MattingRefine outputs 1, 2, 6; mode in
                                               full, sampling, thresholding
    <backbone>/base/{pha,fgr,err,hid}          MattingBase(src_sm, bgr_sm)
    <backbone>/base_full/{pha,err}             MattingBase(src, bgr): outputs 1 and 3
    meta                                       JSON string: versions, seed, model configuration
                                               per backbone and mode, official state-dict entries,
                                               weights digest, selection margins, histograms
"""
import argparse
import hashlib
import importlib.util
import json
import os
import platform
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OFFICIAL_COMMIT = 'a8e82df9f594578edf287dbb2b289ebcc50fbf00'
OFFICIAL_SHA256 = {
    'model/__init__.py': 'ffa69a6899ff50a1b6cddfe5cec26a6544feffdcd89f12b1aa284ee2523975cd',
    'model/decoder.py': '9b4e3c127ced02e7535c685edc699b393b38a091eb3d4fab206051980ebc9959',
    'model/mobilenet.py': '401314d15651507f809c0f646e78653c206744eee9986b321ec4ec94eb29d410',
    'model/model.py': '733ff12c61215aa8f520a54c15e65d5149fda9775a9c04b4a4d14300148adc3d',
    'model/refiner.py': 'ef81f54d88689918d3ef5ccb2f483dcfa5d5aa59e5475cef33de4696fa377e94',
    'model/resnet.py': 'c6c61aa515bc8b28c8f8d4c60fa18019158ee07f935091ca65a179e66c7ba14f',
    'model/utils.py': '716ccdccf92177c5fb6aa2d607f6b556406d4873ff99ba4c11464f1f7dd5cd4f',
}


def load_weight_rule():
    path = os.path.join(ROOT, 'tests', 'resnet_reference_weights.py')
    spec = importlib.util.spec_from_file_location('resnet_reference_weights', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_official(official_dir, allow_other):
    digests = {}
    for rel, expected in OFFICIAL_SHA256.items():
        with open(os.path.join(official_dir, rel), 'rb') as f:
            digests[rel] = hashlib.sha256(f.read()).hexdigest()
        if digests[rel] != expected and not allow_other:
            sys.exit(f'{rel} differs from the official commit {OFFICIAL_COMMIT} '
                     f'(sha256 {digests[rel]}); pass --allow-other-official to use it anyway')
    return digests


def make_scene(H, W, seed):
    """(src, bgr) float32 (1, 3, H, W), values uint8/255: a smooth background with shapes and a
    striped foreground blob with a soft edge composited over it (src differs from bgr there)."""
    rng = np.random.default_rng(seed)
    y, x = np.meshgrid(np.linspace(0, 1, H), np.linspace(0, 1, W), indexing='ij')
    bgr = np.stack([0.2 + 0.6 * x, 0.3 + 0.5 * y, 0.5 + 0.3 * np.sin(3 * x + 2 * y)])
    for _ in range(4):  # soft-edged rectangles
        y0, x0 = rng.uniform(0, 0.8, 2)
        hh, ww = rng.uniform(0.1, 0.3, 2)
        m = (np.clip((y - y0) * H, 0, 1) * np.clip((y0 + hh - y) * H, 0, 1)
             * np.clip((x - x0) * W, 0, 1) * np.clip((x0 + ww - x) * W, 0, 1))
        bgr = bgr * (1 - m) + rng.uniform(0, 1, (3, 1, 1)) * m
    for _ in range(3):  # discs
        cy, cx = rng.uniform(0.1, 0.9, 2)
        r = rng.uniform(0.05, 0.15)
        m = np.clip((r - np.hypot(y - cy, (x - cx) * W / H)) * H, 0, 1)
        bgr = bgr * (1 - m) + rng.uniform(0, 1, (3, 1, 1)) * m
    # foreground: a wobbly blob, alpha with a ~1.5 px soft edge, striped colours
    theta = np.arctan2(y - 0.55, (x - 0.5) * W / H)
    radius = 0.3 + 0.04 * np.sin(5 * theta + rng.uniform(0, 6)) + 0.02 * np.sin(11 * theta)
    dist = radius - np.hypot(y - 0.55, (x - 0.5) * W / H)
    alpha = np.clip(dist * H / 1.5 + 0.5, 0, 1)
    fgr = np.stack([0.8 - 0.4 * y, 0.3 + 0.3 * np.sin(40 * x), 0.4 + 0.4 * np.cos(25 * y + 10 * x)])
    src = alpha * fgr + (1 - alpha) * bgr
    src = src + rng.normal(0, 0.008, src.shape)
    bgr = bgr + rng.normal(0, 0.008, bgr.shape)

    def quantise(a):
        return (np.round(np.clip(a, 0, 1) * 255).astype(np.uint8).astype(np.float32)
                / np.float32(255))[None]
    return quantise(src), quantise(bgr)


def calibrate_heads(rule, shapes, seed, build_full, run):
    """Biases of the output channels of decoder.conv4, then refiner.conv4 (which sees the
    decoder's output), such that their mean over the scene is rule.HEAD_TARGETS (full mode)."""
    head_bias = {m: [0.0] * len(t) for m, t in rule.HEAD_TARGETS.items()}
    for module in ('decoder.conv4', 'refiner.conv4'):
        model = build_full(rule.make_weights(shapes, seed, head_bias))
        captured = {}
        model.get_submodule(module).register_forward_hook(
            lambda _m, _i, out: captured.__setitem__('out', out.detach().numpy().copy()))
        run(model)
        mean = captured['out'].astype(np.float64).mean(axis=(0, 2, 3))
        head_bias[module] = [round(b + t - float(m), 4) for b, t, m
                             in zip(head_bias[module], rule.HEAD_TARGETS[module], mean)]
    return head_bias


def histogram(a):
    a = np.asarray(a, np.float64).ravel()
    inner = a[(a > 0) & (a < 1)]
    deciles = np.histogram(inner, bins=10, range=(0, 1))[0] / a.size
    return {'eq0': round(float((a == 0).mean()), 4), 'eq1': round(float((a == 1).mean()), 4),
            'mean': round(float(a.mean()), 4), 'std': round(float(a.std()), 4),
            'deciles_0_1': [round(float(d), 4) for d in deciles]}


def choose_sample_k(err, lo, hi):
    """k in [lo, hi] (and below the number of positive errors) with the widest gap between the
    k-th and (k+1)-th largest error; returns (k, gap, kth, next)."""
    desc = np.sort(err.ravel().astype(np.float64))[::-1]
    positive = int((desc > 0).sum())
    hi = min(hi, positive - 1)
    if hi < lo:
        raise SystemExit(f'only {positive} positive errors; cannot pick k in [{lo}, {hi}]')
    gaps = desc[lo - 1:hi] - desc[lo:hi + 1]  # gaps[i] = desc[k-1] - desc[k], k = lo + i
    i = int(np.argmax(gaps))
    k = lo + i
    return k, float(gaps[i]), float(desc[k - 1]), float(desc[k])


def choose_threshold(err, preferred, min_margin):
    """preferred if no error lies within min_margin of it, else the grid value (steps of 1e-3
    within +-0.02) with the widest margin. Returns (threshold, margin)."""
    e = err.ravel().astype(np.float64)
    margin = float(np.abs(e - preferred).min())
    if margin >= min_margin:
        return preferred, margin
    grid = np.round(preferred + np.arange(-20, 21) * 1e-3, 6)
    margins = [float(np.abs(e - t).min()) for t in grid]
    i = int(np.argmax(margins))
    return float(grid[i]), margins[i]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--official', required=True,
                        help='folder holding the official model/ package (checked by sha256)')
    parser.add_argument('--out', default=os.path.join(ROOT, 'tests', 'data', 'resnet_reference.npz'))
    parser.add_argument('--size', type=int, nargs=2, default=[96, 160], metavar=('H', 'W'))
    parser.add_argument('--seed', type=int, default=2021, help='weights seed')
    parser.add_argument('--scene-seed', type=int, default=1234)
    parser.add_argument('--backbones', nargs='+', default=['resnet50', 'resnet101'])
    parser.add_argument('--threshold', type=float, default=0.1, help='preferred refine_threshold')
    parser.add_argument('--sample-fraction', type=float, nargs=2, default=[0.15, 0.35],
                        help='range of k as a fraction of the h*w patches')
    parser.add_argument('--min-margin', type=float, default=1e-4)
    parser.add_argument('--max-mb', type=float, default=2.0, help='refuse to write a larger file')
    parser.add_argument('--head-bias-from', metavar='NPZ',
                        help='take the head biases from this reference file (same weights as '
                             'there, e.g. to check the committed weights at a larger size)')
    parser.add_argument('--allow-other-official', action='store_true')
    args = parser.parse_args(argv)

    import torch
    import torchvision
    torch.set_num_threads(2)
    digests = check_official(args.official, args.allow_other_official)
    sys.path.insert(0, os.path.abspath(args.official))
    from model import MattingBase, MattingRefine  # the official package

    rule = load_weight_rule()
    head_bias_from = None
    if args.head_bias_from:
        other = json.loads(str(np.load(args.head_bias_from)['meta']))
        assert other['seed'] == args.seed, 'use the same --seed as that file'
        head_bias_from = {b: i['head_bias'] for b, i in other['backbones'].items()}
    H, W = args.size
    assert H % 4 == 0 and W % 4 == 0
    src, bgr = make_scene(H, W, args.scene_seed)
    t_src, t_bgr = torch.from_numpy(src), torch.from_numpy(bgr)
    arrays = {'src': src, 'bgr': bgr}
    meta = {
        'official_commit': OFFICIAL_COMMIT, 'official_sha256': digests,
        'torch': torch.__version__, 'torchvision': torchvision.__version__,
        'numpy': np.__version__, 'python': platform.python_version(), 'threads': 2,
        'seed': args.seed, 'scene_seed': args.scene_seed, 'size': [H, W],
        'weight_rule': {'RESIDUAL_GAIN': rule.RESIDUAL_GAIN, 'HEAD_GAINS': rule.HEAD_GAINS,
                        'HEAD_TARGETS': rule.HEAD_TARGETS},
        'argv': sys.argv[1:], 'backbones': {},
    }

    def run(model, *inputs):
        with torch.no_grad():
            return [o.numpy().copy() for o in model(*[t.clone() for t in inputs])]

    def build(cls, backbone, weights, **kwargs):
        model = cls(backbone, **kwargs) if kwargs else cls(backbone)
        state = {k: torch.from_numpy(np.array(v)) for k, v in weights.items()
                 if k in model.state_dict()}
        model.load_state_dict(state, strict=True)
        return model.eval()

    names = ('pha', 'fgr', 'pha_sm', 'fgr_sm', 'err_sm', 'ref_sm')
    for backbone in args.backbones:
        probe = MattingRefine(backbone, refine_mode='full')
        entries = [(k, list(v.shape), str(v.dtype).replace('torch.', ''))
                   for k, v in probe.state_dict().items()]
        shapes = [(k, s) for k, s, _ in entries]
        if head_bias_from:
            head_bias = head_bias_from[backbone]
        else:
            head_bias = calibrate_heads(rule, shapes, args.seed, lambda w: build(
                MattingRefine, backbone, w, refine_mode='full'), lambda m: run(m, t_src, t_bgr))
        print(backbone, 'head biases:', head_bias)
        weights = rule.make_weights(shapes, args.seed, head_bias)
        info = {'entries': entries, 'head_bias': head_bias,
                'weights_sha256': rule.weights_digest(weights), 'modes': {}}

        # Activation scale along the network (forward hooks on the full-mode model).
        model = build(MattingRefine, backbone, weights, refine_mode='full')
        stats = {}

        def hook(name):
            def record(_module, _inputs, output):
                out = output[0] if isinstance(output, (tuple, list)) else output
                stats[name] = [round(float(out.std()), 4), round(float(out.abs().max()), 3)]
            return record
        modules = dict(model.named_modules())
        for name in ['backbone.layer1', 'backbone.layer2', 'backbone.layer3', 'backbone.layer4',
                     'backbone.features.3', 'backbone.features.6', 'backbone.features.13',
                     'backbone.features.17', 'aspp', 'decoder.bn1', 'decoder.bn2', 'decoder.bn3',
                     'refiner.bn1', 'refiner.bn2', 'refiner.bn3']:
            if name in modules:
                modules[name].register_forward_hook(hook(name))
        full = run(model, t_src, t_bgr)
        info['activation_std_absmax'] = stats
        print(backbone, 'activations (std, absmax):', stats)

        # Selection settings from the coarse error the refiner sees (quarter resolution).
        err_q = torch.nn.functional.interpolate(
            torch.from_numpy(full[4]), (H // 4, W // 4), mode='bilinear', align_corners=False).numpy()
        n = err_q.size
        k, gap, kth, nxt = choose_sample_k(err_q, max(1, int(n * args.sample_fraction[0])),
                                           int(n * args.sample_fraction[1]))
        threshold, t_margin = choose_threshold(err_q, args.threshold, args.min_margin)
        if gap < args.min_margin or t_margin < args.min_margin:
            sys.exit(f'{backbone}: selection margins too small (gap {gap:.2e}, threshold '
                     f'{t_margin:.2e}); try another --seed')
        modes = {'full': dict(refine_mode='full'),
                 'sampling': dict(refine_mode='sampling', refine_sample_pixels=16 * k),
                 'thresholding': dict(refine_mode='thresholding', refine_threshold=threshold)}
        positive = int((err_q > 0).sum())
        for mode, kwargs in modes.items():
            outs = full if mode == 'full' else run(build(MattingRefine, backbone, weights, **kwargs),
                                                   t_src, t_bgr)
            again = run(build(MattingRefine, backbone, weights, **kwargs), t_src, t_bgr)
            deterministic = all(np.array_equal(a, b) for a, b in zip(outs, again))
            out = dict(zip(names, outs))
            for name in ('pha', 'fgr', 'ref_sm'):
                arrays[f'{backbone}/{mode}/{name}'] = out[name]
            if mode == 'full':
                for name in ('pha_sm', 'fgr_sm', 'err_sm'):
                    arrays[f'{backbone}/coarse/{name}'] = out[name]
            else:
                for name in ('pha_sm', 'fgr_sm', 'err_sm'):
                    assert np.array_equal(out[name], arrays[f'{backbone}/coarse/{name}']), (mode, name)
            refined = int(out['ref_sm'].sum())
            entry = {'config': kwargs, 'refined_patches': refined, 'of_patches': n,
                     'deterministic_rerun': deterministic,
                     'pha': histogram(out['pha']), 'fgr': histogram(out['fgr'])}
            if mode == 'sampling':
                expected = (err_q >= kth) & (err_q > 0)
                entry.update(k=k, positive_errors=positive, kth_err=kth, next_err=nxt, gap=gap,
                             ties_at_kth=int((err_q == kth).sum()),
                             ref_matches_err_rank=bool(np.array_equal(out['ref_sm'] > 0, expected)))
                assert entry['ref_matches_err_rank'] and refined == k
            elif mode == 'thresholding':
                entry.update(threshold=threshold, margin=t_margin,
                             ref_matches_err=bool(np.array_equal(out['ref_sm'] > 0, err_q > threshold)))
                assert entry['ref_matches_err'] and 0 < refined < n
            info['modes'][mode] = entry
            print(f'{backbone} {mode}: refined {refined}/{n}, deterministic {deterministic}, '
                  + ', '.join(f'{a}={b}' for a, b in entry.items()
                              if a in ('k', 'gap', 'kth_err', 'next_err', 'threshold', 'margin')))
        info['coarse'] = {name: histogram(arrays[f'{backbone}/coarse/{name}'])
                          for name in ('pha_sm', 'fgr_sm', 'err_sm')}
        for name, h in info['coarse'].items():
            print(f'  {name}: {h}')
        for mode in modes:
            print(f"  {mode} pha: {info['modes'][mode]['pha']}")
            print(f"  {mode} fgr: {info['modes'][mode]['fgr']}")
        # Not degenerate: alpha and error mostly strictly inside (0, 1), errors varied.
        for name in ('pha_sm', 'err_sm'):
            h = info['coarse'][name]
            assert h['eq0'] + h['eq1'] < 0.5 and h['std'] > 0.05, (backbone, name, h)
        h = info['modes']['full']['pha']
        assert h['eq0'] + h['eq1'] < 0.5 and h['std'] > 0.05, (backbone, 'full pha', h)

        # The official downsampling (what MattingRefine feeds its backbone), and MattingBase on it.
        src_sm = torch.nn.functional.interpolate(t_src, scale_factor=0.25, mode='bilinear',
                                                 align_corners=False, recompute_scale_factor=True)
        bgr_sm = torch.nn.functional.interpolate(t_bgr, scale_factor=0.25, mode='bilinear',
                                                 align_corners=False, recompute_scale_factor=True)
        arrays['src_sm'], arrays['bgr_sm'] = src_sm.numpy(), bgr_sm.numpy()
        base = MattingBase(backbone)
        missing, unexpected = base.load_state_dict(
            {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}, strict=False)
        assert not missing and all(k.startswith('refiner.') for k in unexpected)
        base.eval()
        for name, value in zip(('pha', 'fgr', 'err', 'hid'), run(base, src_sm, bgr_sm)):
            arrays[f'{backbone}/base/{name}'] = value
        # MattingBase on the full-size input: a 4x larger deepest feature map, on which the
        # dilated ASPP branches (rates 6, 9) see more than their centre tap. pha and err only
        # (size budget).
        pha, _, err, _ = run(base, t_src, t_bgr)
        arrays[f'{backbone}/base_full/pha'], arrays[f'{backbone}/base_full/err'] = pha, err
        info['base_full'] = {'pha': histogram(pha), 'err': histogram(err)}
        # MattingRefine's coarse outputs are MattingBase's on the same downsampled input.
        info['base_equals_coarse'] = {
            name: float(np.abs(arrays[f'{backbone}/base/{name}']
                               - arrays[f'{backbone}/coarse/{name}_sm']).max())
            for name in ('pha', 'err')}
        meta['backbones'][backbone] = info

    arrays['meta'] = np.array(json.dumps(meta))
    for key, value in arrays.items():
        assert key == 'meta' or value.dtype == np.float32, key
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    mb = os.path.getsize(args.out) / 2 ** 20
    print(f'wrote {args.out}: {mb:.2f} MB, {len(arrays)} arrays')
    if mb > args.max_mb:
        os.remove(args.out)
        sys.exit(f'{mb:.2f} MB is over --max-mb {args.max_mb}; removed')


if __name__ == '__main__':
    main()
