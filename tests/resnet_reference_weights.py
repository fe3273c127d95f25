"""Deterministic random weights for the ResNet parity reference, from numpy alone.

Used twice: by tools/make_resnet_reference.py, which loads them into the official PyTorch model
and records its outputs in tests/data/resnet_reference.npz, and by tests/test_resnet_parity.py,
which regenerates them (no torch) and runs our model on them. Both must get bit-identical arrays,
so this module depends on numpy only and every entry is drawn from its own generator, seeded by
(seed, crc32 of the entry's official name): the result does not depend on the order of entries.

The rule, in official (torch) naming:
- conv weight (out, in/groups, kh, kw): N(0, sqrt(2 / fan_in)), fan_in = in/groups * kh * kw
  (He), times a gain: RESIDUAL_GAIN for the last conv of a ResNet bottleneck (`layerI.J.conv3`),
  so that the 33 residual additions of ResNet-101 do not blow the activations up; the output
  heads (`decoder.conv4`, `refiner.conv4`) get per-channel gains HEAD_GAINS.
- conv bias (only the two heads have one): N(0, 0.1) on the hidden channels of `decoder.conv4`;
  the output channels get the `head_bias` given (the tool calibrates them so that the heads'
  outputs centre on HEAD_TARGETS, and stores them in the reference file's meta).
- BatchNorm: weight U(0.5, 1.5), bias N(0, 0.1), running_mean N(0, 0.1), running_var U(0.5, 2),
  num_batches_tracked 0 (int64 scalar).
Arrays are drawn and scaled in float32 (numpy's float32 streams; int64 for the counters).
"""
import hashlib
import zlib

import numpy as np

RESIDUAL_GAIN = 0.25
# Output heads: channel 0 alpha, 1-3 foreground residual, 4 error (decoder only), rest hidden.
HEAD_GAINS = {'decoder.conv4': (1.1, 0.4, 0.4, 0.4, 0.6),
              'refiner.conv4': (1.1, 0.4, 0.4, 0.4)}
# What the tool calibrates the head biases to (mean over the reference scene): alpha 0.45,
# residual 0, error 0.12 (so that a fifth or so of the errors clamp to 0, which exercises
# prevent_oversampling). The biases themselves are stored in the reference file's meta.
HEAD_TARGETS = {'decoder.conv4': (0.45, 0.0, 0.0, 0.0, 0.12),
                'refiner.conv4': (0.45, 0.0, 0.0, 0.0)}


def _rng(seed, key):
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def _normal(rng, std, shape):
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(std)


def _uniform(rng, low, high, shape):
    return np.float32(low) + rng.random(shape, dtype=np.float32) * np.float32(high - low)


def _is_residual_end(key):
    # backbone.layer3.12.conv3.weight: the conv whose output is added to the shortcut
    parts = key.split('.')
    return (len(parts) == 5 and parts[0] == 'backbone' and parts[1].startswith('layer')
            and parts[3] == 'conv3' and parts[4] == 'weight')


def make_weights(entries, seed, head_bias=None):
    """entries: iterable of (official key, shape) in any order -> dict key -> numpy array.

    head_bias: {'decoder.conv4': [5 floats], 'refiner.conv4': [4 floats]}, the biases of the
    output channels of the heads (default 0). The returned dict keeps the order of `entries`.
    """
    head_bias = head_bias or {}
    entries = [(k, tuple(int(n) for n in s)) for k, s in entries]
    keys = {k for k, _ in entries}
    out = {}
    for key, shape in entries:
        module, _, name = key.rpartition('.')
        rng = _rng(seed, key)
        is_bn = f'{module}.running_mean' in keys
        if name == 'num_batches_tracked':
            value = np.array(0, np.int64)
        elif name == 'running_mean':
            value = _normal(rng, 0.1, shape)
        elif name == 'running_var':
            value = _uniform(rng, 0.5, 2.0, shape)
        elif is_bn and name == 'weight':
            value = _uniform(rng, 0.5, 1.5, shape)
        elif is_bn and name == 'bias':
            value = _normal(rng, 0.1, shape)
        elif name == 'weight' and len(shape) == 4:
            fan_in = int(np.prod(shape[1:]))
            gain = RESIDUAL_GAIN if _is_residual_end(key) else 1.0
            value = _normal(rng, gain * np.sqrt(2.0 / fan_in), shape)
            if module in HEAD_GAINS:
                gains = np.ones(shape[0], np.float32)
                gains[:len(HEAD_GAINS[module])] = HEAD_GAINS[module]
                value *= gains[:, None, None, None]
        elif name == 'bias' and module in HEAD_GAINS:
            value = _normal(rng, 0.1, shape)
            head = head_bias.get(module, [0.0] * len(HEAD_GAINS[module]))
            value[:len(head)] = np.asarray(head, np.float32)
        else:
            raise ValueError(f'no weight rule for {key} {shape}')
        out[key] = value
    return out


def weights_digest(weights):
    """sha256 over keys, shapes and bytes: detects a numpy whose random streams changed."""
    h = hashlib.sha256()
    for key, value in weights.items():
        value = np.ascontiguousarray(value)
        h.update(f'{key}{value.shape}{value.dtype.str}'.encode())
        h.update(value.tobytes())
    return h.hexdigest()
