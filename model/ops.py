"""Resampling, a concat-free conv and patch write-back, as each export target needs them.

Three ways the model runs, one code path with these helpers deciding per target:

* eagerly (dygraph): `F.interpolate` and plain ops;
* traced for ONNX (inside `onnx_tracing()`, used by utils.deploy.export for ONNX Runtime and
  OpenVINO): `F.interpolate` too (an ONNX Resize, which both engines run fast and exactly), and
  index_put with index tensors materialised at the shape of the values, because paddle2onnx
  2.1 converts index_put without broadcasting its indices. The graph has no `If`: nothing
  below branches on runtime sizes for ONNX;
* traced for Paddle Inference (any other tracing): no `F.interpolate`. Paddle 3.3.1's
  Inference predictor with oneDNN (its fast CPU engine) cannot run a PIR model that contains
  it: the oneDNN interp kernels fail with `ConvertPirAttribute2RuntimeAttribute not support
  [pir::ArrayAttribute<pir::DoubleAttribute>]` (their `scale` attribute), and Paddle's native
  CPU interp kernel is slow besides. Every bilinear resize is then written with convs,
  matmuls, concats and transposes, matching `F.interpolate(x, size, mode='bilinear',
  align_corners=False)` (half-pixel centres, source coordinate clamped at 0, last index
  clamped) to float rounding (~1e-7):

  - exact integer upsampling by a factor f known when tracing (the decoder's 2x steps, the
    coarse-to-full 4x/8x step): output f*m + a is a fixed 3-tap blend of inputs m-1, m, m+1
    (edges replicated): one 3-tap conv with f output channels (one per phase), then an
    interleaving transpose. Used for columns, and for rows when f > 2;
  - any sizes: a matmul with an interpolation matrix built from the runtime sizes (A @ x along
    the axis); cost grows with n_in * n_out. Used for rows of 2x steps (as fast as the phase
    conv there) and whenever the sizes are not an exact multiple;
  - exact integer downsampling (the input to the backbone): a strided depthwise conv averaging
    the two middle rows and columns of each f x f block.

  Which one runs is decided in the graph (`paddle.static.nn.cond`) from the runtime sizes, so
  an exported model is exact for every input size and fast for the usual ones.

Paddle 3.3.1 + oneDNN behaviours worked around here and in the refiner (found by testing;
tests/test_export.py guards them): a matmul reading a 4-D conv output directly returns
garbage (blocked layout), so tensors are reshaped to 3-D first; every reshape is a copy, so
there are as few as possible; broadcasting multiplies such as (N, C, H, W) * (H, 1) are ~100x
slower than plain ones, so none are used; `pad` is slow (mode='replicate') or crashes
(the generic pad op), so edges are replicated and zero-padded with concat; a native op that
reads a cond output directly fails, so each cond output first goes through a oneDNN op;
empty tensors make oneDNN throw, so none are created (the refiner's guard patch,
`append_guard_patch`; ONNX graphs keep it too: OpenVINO rejects empty tensors as well).
"""
import contextlib
import functools

import numpy as np
import paddle
import paddle.nn.functional as F


def _traced():
    return not paddle.in_dynamic_mode()


_ONNX_TRACING = []


@contextlib.contextmanager
def onnx_tracing():
    """Models traced inside this context are traced for ONNX (see the module docstring)."""
    _ONNX_TRACING.append(True)
    try:
        yield
    finally:
        _ONNX_TRACING.pop()


def _onnx():
    return _traced() and bool(_ONNX_TRACING)


def _channels(x, shape):
    """The channel count of NCHW x: the static one if known (later ops need it), else runtime."""
    return x.shape[1] if x.shape[1] >= 0 else shape[1]


# ---------------------------------------------------------------------------------------------
# Index tables
# ---------------------------------------------------------------------------------------------

def source_coords(n_in, n_out, offset=None):
    """Bilinear source taps along one axis (align_corners=False), as the CPU kernels compute them.

    Output o samples s = (o + 0.5) * n_in / n_out - 0.5 (float32), clamped at 0; returns
    i0 = floor(s), i1 = min(i0 + 1, n_in - 1) (int64) and w1 = s - i0, the weight of i1.
    n_in, n_out: ints or 0-d int tensors. offset: optional int64 tensor of output indices to
    evaluate (any shape) instead of arange(n_out); they may lie outside [0, n_out) (the
    caller masks those).
    """
    n_in = paddle.to_tensor(n_in, 'int64') if isinstance(n_in, int) else n_in.astype('int64')
    n_out = paddle.to_tensor(n_out, 'int64') if isinstance(n_out, int) else n_out.astype('int64')
    o = paddle.arange(n_out, dtype='int64') if offset is None else offset
    scale = n_in.astype('float32') / n_out.astype('float32')
    s = paddle.clip((o.astype('float32') + 0.5) * scale - 0.5, min=0.0)
    last = n_in - 1
    i0 = paddle.minimum(s.astype('int64'), last)  # float -> int truncates: floor for s >= 0
    i1 = paddle.minimum(i0 + 1, last)
    return i0, i1, s - i0.astype('float32')


@functools.lru_cache(maxsize=16)
def phase_weights(factor):
    """(factor, 3) float32: output f*m + a = sum_k w[a, k] * input[m - 1 + k] (exact f-x upsampling)."""
    w = np.zeros((factor, 3), np.float32)
    for a in range(factor):
        s = (a + 0.5) / factor - 0.5  # source coordinate relative to m, in (-0.5, 0.5)
        if s < 0:
            w[a, 0], w[a, 1] = -s, 1 + s
        else:
            w[a, 1], w[a, 2] = 1 - s, s
    return w


def interpolation_matrix(n_in, n_out):
    """(n_out, n_in) float32 A such that A @ v resizes v bilinearly; sizes ints or 0-d tensors."""
    i0, i1, w1 = source_coords(n_in, n_out)
    if isinstance(n_in, int):
        shape = [n_out, n_in]
    else:
        shape = paddle.stack([n_out.astype('int64'), n_in.astype('int64')])
    # put_along_axis(reduce='add') rather than one-hot products: a plain native op, no
    # broadcasting multiply
    a = paddle.zeros(shape, 'float32')
    a = paddle.put_along_axis(a, i0.unsqueeze(1), (1 - w1).unsqueeze(1), axis=1, reduce='add')
    return paddle.put_along_axis(a, i1.unsqueeze(1), w1.unsqueeze(1), axis=1, reduce='add')


# ---------------------------------------------------------------------------------------------
# One axis of a (N, H, W) tensor
# ---------------------------------------------------------------------------------------------

def _replicate_edges(x, axis):
    """Add one replicated row (axis=1) or column (axis=2) on both sides of (N, H, W)."""
    if axis == 1:
        return paddle.concat([x[:, :1], x, x[:, -1:]], axis=1)
    return paddle.concat([x[:, :, :1], x, x[:, :, -1:]], axis=2)


def _upsample_axis_exact(x, factor, axis):
    """(N, H, W) -> f-times larger along `axis` (1: rows, 2: columns), exact integer factor.

    Rows: returns (N, H, f, W) (output row m * f + a at [:, m, a]); the caller merges the two
    middle axes (a reshape, which is a copy in oneDNN, so it is done once, to the final shape).
    Columns: returns (N, H, W * f).
    """
    taps = phase_weights(factor)
    xp = _replicate_edges(x, axis).unsqueeze(1)  # (N, 1, H(+2), W(+2))
    kernel = taps.reshape(factor, 1, 3, 1) if axis == 1 else taps.reshape(factor, 1, 1, 3)
    y = F.conv2d(xp, paddle.to_tensor(kernel).astype(x.dtype))  # (N, f, H, W): one channel per phase
    if axis == 1:  # interleave the phases: rows m * f + a
        return y.transpose([0, 2, 1, 3])
    shape = paddle.shape(x)
    return y.transpose([0, 2, 3, 1]).reshape([shape[0], shape[1], shape[2] * factor])


def _resize_axis_matmul(x, n_out, axis):
    """(N, H, W) resized along `axis` to n_out with a dense interpolation matrix (any sizes).

    Rows: returns (N, n_out, 1, W) (the shape convention of `_upsample_axis_exact`).
    """
    shape = paddle.shape(x)
    if axis == 1:
        y = paddle.matmul(interpolation_matrix(shape[1], n_out), x)
        return y.reshape([shape[0], n_out, 1, shape[2]])
    return paddle.matmul(x, interpolation_matrix(shape[2], n_out), transpose_y=True)


def _resize_axis(x, n_out, axis, factor):
    """Traced resize of one axis of (N, H, W); exact path when n_out == factor * n_in.

    Returns (N, H, W') for columns, (N, h, k, W) with h * k = n_out for rows (see
    `_upsample_axis_exact`).
    """
    shape = paddle.shape(x)
    n_in = shape[axis]
    if factor == 1:  # usually the identity; resize only when it is not
        # (a oneDNN reshape, not unsqueeze: a native op's output leaving a cond block breaks
        # Paddle 3.3.1's oneDNN runtime)
        same = (lambda: x.reshape([shape[0], shape[1], 1, shape[2]])) if axis == 1 else (lambda: x)
        return paddle.static.nn.cond(n_in == n_out, same, lambda: _resize_axis_matmul(x, n_out, axis))
    if not factor or (axis == 1 and factor == 2):
        # Rows of a 2x upsampling: the dense matmul (2 * n_in multiply-adds per output) is as
        # fast as the phase conv + interleave under oneDNN and exact for any sizes.
        return _resize_axis_matmul(x, n_out, axis)
    return paddle.static.nn.cond(n_in * factor == n_out,
                                 lambda: _upsample_axis_exact(x, factor, axis),
                                 lambda: _resize_axis_matmul(x, n_out, axis))


# ---------------------------------------------------------------------------------------------
# Public helpers
# ---------------------------------------------------------------------------------------------

def resize_bilinear(x, size, factor=None):
    """Bilinear resize of NCHW `x` to `size` [H, W], as F.interpolate(align_corners=False).

    size: ints (eager) or 0-d int tensors (traced). factor: the integer upsampling factor
    expected when tracing (takes the fast exact path when the runtime sizes match it), or
    None for small tensors (dense matmuls; exact for any sizes).
    """
    if not _traced() or _onnx():
        return F.interpolate(x, size=size, mode='bilinear', align_corners=False)
    shape = paddle.shape(x)
    size = [paddle.cast(n, shape.dtype) for n in size]
    # 3-D (N, H, W) with N = B * C: plain layout for oneDNN (see the module docstring)
    y = x.reshape([-1, shape[2], shape[3]])
    # Columns first when upsampling: the column step's interleave is the costlier one, so it
    # runs on the smaller tensor. The row step's result is reshaped straight to the output
    # shape, once (every reshape is a copy in oneDNN), and outside the cond: Paddle 3.3.1's
    # oneDNN runtime fails when a native op reads a cond output directly.
    y = _resize_axis(y, size[1], 2, factor)
    y = _resize_axis(y, size[0], 1, factor)
    return y.reshape([shape[0], _channels(x, shape), size[0], size[1]])


def downsample_bilinear(x, size, factor):
    """Bilinear downsampling of NCHW `x` to `size` [h, w], as F.interpolate(align_corners=False).

    factor: the even integer reduction expected when tracing (e.g. 4 for backbone_scale 1/4).
    When H == factor * h and W == factor * w, output (o, p) samples input (f*o + (f-1)/2, ...):
    the mean of the 2x2 input pixels around it (a depthwise conv with stride f). Otherwise, and
    for odd factors, dense matmuls.
    """
    if not _traced() or _onnx():
        return F.interpolate(x, size=size, mode='bilinear', align_corners=False)
    shape = paddle.shape(x)
    shape_c = x.shape[1]  # static channel count
    size = [paddle.cast(n, shape.dtype) for n in size]

    def general():
        y = x.reshape([-1, shape[2], shape[3]])
        y = paddle.matmul(interpolation_matrix(shape[2], size[0]), y)
        y = paddle.matmul(y, interpolation_matrix(shape[3], size[1]), transpose_y=True)
        return y.reshape([shape[0], _channels(x, shape), size[0], size[1]])

    if factor % 2:
        return general()

    def exact():
        # a strided depthwise conv reads each f x f block once; its weights pick the middle 2x2
        kernel = np.zeros((shape_c, 1, factor, factor), np.float32)
        kernel[:, :, factor // 2 - 1:factor // 2 + 1, factor // 2 - 1:factor // 2 + 1] = 0.25
        return F.conv2d(x, paddle.to_tensor(kernel).astype(x.dtype), stride=factor, groups=shape_c)

    exact_size = paddle.logical_and(shape[2] == size[0] * factor, shape[3] == size[1] * factor)
    return paddle.static.nn.cond(exact_size, exact, general)


def upsample_nearest2x(x):
    """(B, C, H, W) -> (B, C, 2H, 2W), each pixel repeated 2x2 (F.interpolate scale 2, nearest)."""
    shape = paddle.shape(x) if _traced() else x.shape
    y = paddle.expand(x.unsqueeze([3, 5]), [-1, -1, -1, 2, -1, 2])  # (B, C, H, 2, W, 2)
    return y.reshape([shape[0], shape[1], shape[2] * 2, shape[3] * 2])


def broadcast_spatial(x, size):
    """(B, C, 1, 1) -> (B, C, H, W) by repetition: bilinear resizing of a 1x1 image."""
    if not _traced():
        return paddle.expand(x, [x.shape[0], x.shape[1], size[0], size[1]])
    shape = paddle.shape(x)
    return paddle.expand(x, [shape[0], shape[1], size[0], size[1]])


def fold_batch_norm(conv, bn):
    """(weight, bias) of the conv that computes bn(conv(x)) with bn's running statistics."""
    weight, bias = conv.weight, conv.bias
    scale = bn.weight / paddle.sqrt(bn._variance + bn._epsilon)
    shift = bn.bias - bn._mean * scale
    weight = weight * scale.reshape([-1, 1, 1, 1])
    return weight, (shift if bias is None else bias * scale + shift)


def conv_parts(parts, conv, bn=None, padding=0, part_convs=None):
    """bn(conv(concat(parts, axis=1))) as a sum of one conv per part: no concatenated copy.

    conv: an nn.Conv2D whose input channels are the parts' channels in order; bn: an optional
    nn.BatchNorm2D after it, folded into the conv weights and bias unless it is training (the
    same function, to float rounding). part_convs: optional {part index: fn(x, weight) -> y}
    replacing F.conv2d for that part (the refiner folds an upsampling into one).
    Under oneDNN the sum fuses into the convs (residual add), and splitting a 54-channel input
    into 48 + 6 channels also lets the big part run with aligned channel blocks.
    """
    weight, bias = conv.weight, conv.bias
    if bn is not None and not bn.training:
        weight, bias = fold_batch_norm(conv, bn)
        bn = None
    out, start = None, 0
    for i, x in enumerate(parts):
        channels = x.shape[1]
        w = weight[:, start:start + channels]
        start += channels
        if part_convs and i in part_convs:
            y = part_convs[i](x, w)
            if out is None and bias is not None:
                y = y + bias.reshape([1, -1, 1, 1])
        else:
            y = F.conv2d(x, w, bias if out is None else None, padding=padding)
        out = y if out is None else out + y
    return out if bn is None else bn(out)


def zero_pad(x, pad):
    """Zero-pad the last two axes of NCHW `x` by `pad` on every side (F.pad constant 0).

    Traced, with concats: Paddle 3.3.1's oneDNN pad kernel is very slow on large tensors.
    """
    if not _traced():
        return F.pad(x, [pad] * 4)
    shape = paddle.shape(x)
    zeros_rows = paddle.zeros([shape[0], shape[1], pad, shape[3]], x.dtype)
    x = paddle.concat([zeros_rows, x, zeros_rows], axis=2)
    zeros_cols = paddle.zeros([shape[0], shape[1], shape[2] + 2 * pad, pad], x.dtype)
    return paddle.concat([zeros_cols, x, zeros_cols], axis=3)


def index_put(x, index, values, inplace=False):
    """paddle.index_put(x, index, values) with broadcast index tensors.

    inplace: eager only, write into x itself (to_static refuses in-place ops on views).
    Traced for ONNX, the index tensors are materialised at the full shape of `values`:
    paddle2onnx 2.1 converts index_put without broadcasting its indices.
    """
    if _onnx():
        shape = values.shape if not _traced() else paddle.shape(values)
        index = tuple(paddle.expand(i, shape) for i in index)
    if inplace and not _traced():
        return paddle.index_put_(x, index, values)
    return paddle.index_put(x, index, values)


def nothing_selected(idx):
    """True if no patch is selected (eager); always False when traced: a graph cannot skip the
    refinement, so it refines at least the guard patch (`append_guard_patch`)."""
    return not _traced() and idx.shape[0] == 0


def append_guard_patch(idx):
    """Traced: the (P, 3) patch locations plus one guard patch at (0, 0, 0); eager: idx.

    Ops on empty batches fail in oneDNN, and a traced graph cannot branch on the number of
    selected patches, so it always refines one more patch. `resolve_guard_patch` then gives
    that patch the values it must write back.
    """
    if not _traced():
        return idx
    return paddle.concat([idx, paddle.zeros([1, 3], idx.dtype)])


def resolve_guard_patch(patches, images, ref):
    """Traced: the refined (P + 1, C, 4, 4) patches with the guard patch (the last) replaced by
    what `images` (concatenated along channels) already hold at (0, 0, 0) unless that location
    is selected in `ref` (then a real patch there carries the same values); eager: patches.

    A gather rather than a branch, so no tensor is ever empty.
    """
    if not _traced():
        return patches
    keep = paddle.concat([img[0:1, :, 0:4, 0:4] for img in images], axis=1)
    count = paddle.shape(patches)[0:1].astype('int64')
    rows = paddle.arange(count[0], dtype='int64')
    unselected = (ref[0, 0, 0, 0] <= 0).astype('int64')
    rows = rows + (rows == count - 1).astype('int64') * unselected
    return paddle.gather(paddle.concat([patches, keep]), rows)
