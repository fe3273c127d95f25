"""The BackgroundMattingV2 refiner: re-predicts selected 4x4 patches at full resolution.

Same results as the official refiner (crop windows around the selected patches from the coarse
output upsampled to half resolution and from the input at half and full resolution, two conv
stages, write the patches back), organised so that the work grows with the number of selected
patches rather than with the image:

* the coarse output is never upsampled as a whole: each patch's half-resolution window is
  interpolated from a small window of the coarse output with per-patch interpolation matrices
  (two batched matmuls), zero outside the image exactly as the official zero padding;
* src and bgr windows are rows gathered from channels-last tables, each made by one strided
  conv over the image: the means of its 2x2 blocks (bilinear downsampling by exactly 2) for
  the half-resolution window, the blocks' 12 values for the full-resolution one;
* the convs over concatenated inputs are sums of convs over the parts (no concatenated
  copies); after the nearest 2x upsampling, inference works on 2x2 pixel blocks (conv3 and
  conv4 as block convs with phase-major outputs: no upsampled or interleaved copy), training
  on pixels with the upsampling folded into conv3;
* patches are written back with one index_put on the image (no full-resolution transposes).

The same code runs eagerly and when traced for export (sizes from `paddle.shape`, no branch on
the number of patches: the exporter workarounds are in `model.ops`).
"""
import math

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .ops import (append_guard_patch, conv_parts, downsample_bilinear, fold_batch_norm,
                  index_put, nothing_selected,
                  resize_bilinear, resolve_guard_patch, source_coords, upsample_nearest2x, zero_pad)
from .options import REFINE_DEFAULTS, REFINE_KERNEL_SIZES, REFINE_MODES
from .utils import batch_size, spatial_size


def _pixel_block_kernel():
    """(12, 3, 2, 2) conv weights: the 12 values of a 2x2 block of a 3-channel image, ordered
    (c, dy, dx)."""
    k = np.zeros((12, 3, 2, 2), np.float32)
    for c in range(3):
        for dy in range(2):
            for dx in range(2):
                k[c * 4 + dy * 2 + dx, c, dy, dx] = 1
    return k


def _block_mean_kernel():
    """(3, 3, 2, 2) conv weights: the mean of each channel over a 2x2 block (bilinear
    downsampling by exactly 2)."""
    return np.eye(3, dtype=np.float32)[:, :, None, None].repeat(2, 2).repeat(2, 3) / 4


def _phase_selection(kernel_size):
    """(2 * 2 * kb, K) 0/1 matrix A, kb = (K + 1) // 2: A[(a, d, m), k] = 1 where k = 2m + d - a.

    A 'block' is 2x2 pixels; pixel row 2m + d of a window is row d of block m. A K x K conv whose
    output pixel 2m' + a (phase a of block m') reads input pixel rows 2m' + a + k, k < K, reads
    row d of block m' + m where 2m + d = a + k: in block space it is a kb x kb conv from
    (channel, d) to (a, channel) whose taps are those of A (per axis).
    """
    kb = (kernel_size + 1) // 2
    a = np.zeros((2, 2, kb, kernel_size), np.float32)
    for phase in range(2):
        for d in range(2):
            for m in range(kb):
                k = 2 * m + d - phase
                if 0 <= k < kernel_size:
                    a[phase, d, m, k] = 1
    return a.reshape(4 * kb, kernel_size)


def phase_conv_weights(weight, input_phases=False):
    """Block-space weights of a K x K conv (weight (O, C, K, K)), see `_phase_selection`.

    Returns (4 O, 4 C, kb, kb): output channels (a, b, o) (phase-major), input channels
    (c, dy, dx) (a block of pixels, channel-major) or, with input_phases, (dy, dx, c) (the
    phase-major layout of this function's own outputs).
    """
    out_channels, in_channels, k = weight.shape[0], weight.shape[1], weight.shape[2]
    kb = (k + 1) // 2
    a = paddle.to_tensor(_phase_selection(k)).astype(weight.dtype)             # (4 kb, K)
    w = weight.reshape([out_channels * in_channels, k, k])
    w = paddle.matmul(paddle.matmul(a, w), a, transpose_y=True)                # (O C, 4kb, 4kb)
    # axes (o, c, a, dy, m, b, dx, n) reordered by one gather with a constant index: Paddle
    # Inference's oneDNN transpose fails on 8 axes
    axes = [2, 5, 0, 3, 6, 1, 4, 7] if input_phases else [2, 5, 0, 1, 3, 6, 4, 7]
    order = np.arange(out_channels * in_channels * 16 * kb * kb)
    order = order.reshape(out_channels, in_channels, 2, 2, kb, 2, 2, kb).transpose(axes).ravel()
    w = paddle.gather(w.reshape([-1]), paddle.to_tensor(order))
    return w.reshape([4 * out_channels, 4 * in_channels, kb, kb])


def crop_patches(x, idx, size, padding):
    """Crop the windows around selected patch locations with `paddle.gather_nd` (reference helper).

    Args:
        x: image (B, C, H, W).
        idx: (P, 3) int64 patch locations (b, i, j) on a grid of stride `size`.
        size: patch size, also the stride of the grid.
        padding: context added on every side (x is zero-padded by it first).
    Returns:
        (P, C, size + 2 * padding, size + 2 * padding)

    The refiner uses the faster `Refiner._crop_input` / `Refiner._crop_coarse`; this
    straightforward version is kept as the definition they are tested against.
    """
    if padding:
        x = F.pad(x, [padding] * 4)
    window = size + 2 * padding
    x = x.transpose([0, 2, 3, 1])  # channels last: each gathered pixel is one contiguous row
    offsets = paddle.arange(window, dtype=idx.dtype)
    zeros = paddle.zeros([1, window, window], dtype=idx.dtype)
    b = idx[:, 0].reshape([-1, 1, 1]) + zeros
    rows = (idx[:, 1:2] * size + offsets).reshape([-1, window, 1]) + zeros
    cols = (idx[:, 2:3] * size + offsets).reshape([-1, 1, window]) + zeros
    patches = paddle.gather_nd(x, paddle.stack([b, rows, cols], axis=-1))  # (P, w, w, C)
    return patches.transpose([0, 3, 1, 2])


def replace_patches(x, patches, idx, inplace=False):
    """Write patches back into an image.

    Args:
        x: image (B, C, H, W), H and W divisible by the patch size p.
        patches: (P, C, p, p) replacement patches.
        idx: (P, 3) int64 patch locations (b, i, j) on the grid of stride p. A location may
            appear twice only with identical patches (the order of the writes is not defined).
        inplace: eager only, write into x itself (saves a copy of the image; x is changed).
    Returns:
        (B, C, H, W) with the selected patches replaced.

    One `index_put` with broadcast index tensors (b, c, row, column) of shapes (P, 1, 1, 1),
    (1, C, 1, 1), (P, 1, p, 1), (P, 1, 1, p): nothing of image size is built besides the result
    (the official scatter_nd views the whole image as rows of patches: two full-resolution
    transposes).
    """
    C, p = patches.shape[1], patches.shape[3]
    offsets = paddle.arange(p, dtype='int64')
    index = (idx[:, 0].reshape([-1, 1, 1, 1]),
             paddle.arange(C, dtype='int64').reshape([1, C, 1, 1]),
             (idx[:, 1:2] * p + offsets).reshape([-1, 1, p, 1]),
             (idx[:, 2:3] * p + offsets).reshape([-1, 1, 1, p]))
    return index_put(x, index, patches.astype(x.dtype), inplace)


class Refiner(nn.Layer):
    """Refines the coarse output at full resolution, patch by patch.

    Args:
        mode: 'full' refines every pixel, 'sampling' the `sample_pixels // 16` 4x4 patches with the
            largest error, 'thresholding' the patches whose error exceeds `threshold`.
        sample_pixels: pixel budget in 'sampling' mode.
        threshold: error threshold in 'thresholding' mode.
        kernel_size: 3 (the paper) or 1 (faster, less context).
        prevent_oversampling: in 'sampling' mode, skip selected patches whose error is 0.
        backbone_scale: coarse resolution / full resolution, if known (a hint for traced graphs).

    Inputs:
        src, bgr: (B, 3, H, W) full resolution, H and W divisible by 4.
        pha: (B, 1, h, w), fgr: (B, 3, h, w) (foreground residual), err: (B, 1, h, w),
        hid: (B, 32, h, w): the coarse outputs at backbone resolution.
    Outputs:
        pha (B, 1, H, W), fgr (B, 3, H, W) (residual, not clamped), ref (B, 1, H/4, W/4):
        1 where a 4x4 patch was refined, else 0.
    """

    def __init__(self, mode=REFINE_DEFAULTS.refine_mode, sample_pixels=REFINE_DEFAULTS.refine_sample_pixels,
                 threshold=REFINE_DEFAULTS.refine_threshold, kernel_size=REFINE_DEFAULTS.refine_kernel_size,
                 prevent_oversampling=REFINE_DEFAULTS.refine_prevent_oversampling, backbone_scale=None):
        super().__init__()
        if mode not in REFINE_MODES:
            raise ValueError(f'refine_mode must be one of {REFINE_MODES}, got {mode!r}')
        if kernel_size not in REFINE_KERNEL_SIZES:
            raise ValueError(f'refine_kernel_size must be 1 or 3, got {kernel_size!r}')
        if mode == 'sampling' and sample_pixels < 16:
            raise ValueError(f'refine_sample_pixels must be at least 16 (one 4x4 patch), got {sample_pixels}')
        self.mode = mode
        self.sample_pixels = sample_pixels
        self.threshold = threshold
        self.kernel_size = kernel_size
        self.prevent_oversampling = prevent_oversampling
        # Coarse resolution / full resolution when known (MattingRefine passes it). Only a hint
        # for traced graphs: it selects fast exact resampling paths and bounds the coarse window
        # size; the results do not depend on it. Not a parameter (state dict unchanged).
        self.backbone_scale = backbone_scale

        channels = [32, 24, 16, 12, 4]
        self.conv1 = nn.Conv2D(channels[0] + 6 + 4, channels[1], kernel_size, bias_attr=False)
        self.bn1 = nn.BatchNorm2D(channels[1])
        self.conv2 = nn.Conv2D(channels[1], channels[2], kernel_size, bias_attr=False)
        self.bn2 = nn.BatchNorm2D(channels[2])
        self.conv3 = nn.Conv2D(channels[2] + 6, channels[3], kernel_size, bias_attr=False)
        self.bn3 = nn.BatchNorm2D(channels[3])
        self.conv4 = nn.Conv2D(channels[3], channels[4], kernel_size)
        self.relu = nn.ReLU()

    # -- geometry ---------------------------------------------------------------------------

    @property
    def _pad_half(self):
        """Context around a patch at half resolution (official: 3 px for kernel 3)."""
        return 3 if self.kernel_size == 3 else 0

    @property
    def _pad_full(self):
        """Context around a patch at full resolution (official: 2 px for kernel 3)."""
        return 2 if self.kernel_size == 3 else 0

    def _factor(self, resolution):
        """Integer upsampling factor from the coarse resolution to `resolution` (1, 1/2, 1/4 of
        full), or None when unknown or not an integer."""
        if not self.backbone_scale:
            return None
        f = resolution / self.backbone_scale
        return int(round(f)) if abs(f - round(f)) < 1e-6 and round(f) >= 1 else None

    # -- layers -----------------------------------------------------------------------------

    def _stage1(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(x)))

    def _stage2(self, x):
        x = self.relu(self.bn3(self.conv3(x)))
        return self.conv4(x)

    # -- forward ----------------------------------------------------------------------------

    def forward(self, src, bgr, pha, fgr, err, hid):
        if self.mode == 'full':
            return self._refine_full(src, bgr, pha, fgr, hid)
        # the parts below are also timed one by one (utils.deploy.benchmark --profile)
        idx, ref = self.select(src, err)
        pha_out, fgr_out = self.upsample(src, pha, fgr)
        if not nothing_selected(idx):
            idx = append_guard_patch(idx)  # traced graphs always refine one more patch
            patches = self.refine_windows(*self.crop(src, bgr, pha, fgr, hid, idx))
            pha_out, fgr_out = self.write_back(pha_out, fgr_out, patches, idx, ref)
        return pha_out, fgr_out, ref

    def select(self, src, err):
        """The patches to refine: idx (P, 3) int64 (b, i, j) of each selected 4x4 patch, and
        ref (B, 1, H/4, W/4), 1 where selected."""
        H, W = spatial_size(src)
        quarter = [H // 4, W // 4]
        if not paddle.in_dynamic_mode() or spatial_size(err) != quarter:
            err = resize_bilinear(err, quarter, factor=self._factor(1 / 4))
        ref = self.select_refinement_regions(err)
        return paddle.nonzero(ref.squeeze(1)), ref

    def upsample(self, src, pha, fgr):
        """The coarse pha (B, 1, h, w) and fgr (B, 3, h, w) resized to full resolution."""
        H, W = spatial_size(src)
        factor = self._factor(1)
        return resize_bilinear(pha, [H, W], factor=factor), resize_bilinear(fgr, [H, W], factor=factor)

    def crop(self, src, bgr, pha, fgr, hid, idx):
        """The windows `refine_windows` reads around the patches at idx (P, 3): (coarse, src_half,
        src_full), see there."""
        coarse = self._crop_coarse(paddle.concat([hid, pha, fgr], axis=1), idx, spatial_size(src))
        return (coarse,) + tuple(self._crop_input(src, bgr, idx))

    def write_back(self, pha_out, fgr_out, patches, idx, ref):
        """Write the refined (P, 4, 4, 4) patches at idx into the upsampled pha_out, fgr_out."""
        patches = resolve_guard_patch(patches, (pha_out, fgr_out), ref)
        # the upsampled images are ours: write in place when no gradient needs them (index_put
        # does so eagerly only)
        inplace = not paddle.is_grad_enabled()
        return (replace_patches(pha_out, patches[:, :1], idx, inplace),
                replace_patches(fgr_out, patches[:, 1:], idx, inplace))

    @property
    def window_sizes(self):
        """Sides of the windows `refine_windows` reads: (half resolution, full-resolution blocks)."""
        return 2 + 2 * self._pad_half, 2 + self._pad_full

    def refine_windows(self, coarse, src_half, src_blocks):
        """The refiner's convolutions on cropped windows -> (P, 4, 4, 4) (pha, fgr residual).

        Args:
            coarse: (P, 36, wh, wh) hid, pha, fgr residual upsampled to half resolution;
            src_half: (P, 6, wh, wh) src, bgr at half resolution;
            src_blocks: (P, 24, nb, nb) src, bgr at full resolution as 2x2 pixel blocks
                (`_crop_input`); wh, nb = `window_sizes` (8, 4 with kernel 3; 2, 2 with kernel 1).

        Same layers as the official refiner, computed without its concats: a conv over
        concat([a, b]) is the sum of convs over a and b with the matching weight slices (the
        patch batches are large: each concat was a full copy). After the nearest 2x
        upsampling, inference works in block space (`_stage2_blocks`); training, whose batch
        norm needs the pixels, upsamples.
        """
        x = self.relu(conv_parts([coarse, src_half], self.conv1, self.bn1))
        x = self.relu(conv_parts([x], self.conv2, self.bn2))
        if not self.bn3.training:
            return self._stage2_blocks(x, src_blocks)
        src_full = self.blocks_to_pixels(src_blocks)
        if self.kernel_size == 3:
            x = conv_parts([x, src_full], self.conv3, self.bn3, part_convs={0: self._conv_upsampled})
        else:
            x = conv_parts([upsample_nearest2x(x), src_full], self.conv3, self.bn3)
        return self.conv4(self.relu(x))

    def _stage2_blocks(self, x, src_blocks):
        """conv3 (with bn3) and conv4 on (upsampled x, src) in block space -> (P, 4, 4, 4).

        A pixel window of 2n x 2n is held as n x n blocks of 2x2 pixels (`_phase_selection`):
        the nearest 2x upsampling of x (P, 16, n, n) is x itself (every block constant), the
        src/bgr window comes as blocks from the crop, and each K x K conv becomes a conv over
        blocks with phase-major output channels. No upsampled or interleaved copy is made
        until the (P, 16, 2, 2) result, which is tiny.
        """
        weight, bias = fold_batch_norm(self.conv3, self.bn3)
        wx, ws = weight[:, :x.shape[1]], weight[:, x.shape[1]:]
        out_channels = weight.shape[0]
        wx = phase_conv_weights(wx)                        # (4 O, 4 C, kb, kb), inputs (c, dy, dx)
        wx = wx.reshape([4 * out_channels, -1, 4, wx.shape[2], wx.shape[3]]).sum(axis=2)
        y = F.conv2d(x, wx, paddle.tile(bias, [4])) + F.conv2d(src_blocks, phase_conv_weights(ws))
        y = F.conv2d(self.relu(y), phase_conv_weights(self.conv4.weight, input_phases=True),
                     paddle.tile(self.conv4.bias, [4]))     # (P, 4 * 4, 2, 2): (a, b, o), m, n
        p = y.shape[0] if paddle.in_dynamic_mode() else -1
        y = y.reshape([p, 2, 2, 4, 2, 2]).transpose([0, 3, 4, 1, 5, 2])
        return y.reshape([p, 4, 4, 4])

    @staticmethod
    def _conv_upsampled(x, weight):
        """conv2d(nearest_upsample_2x(x), weight) for a 3x3 kernel, without upsampling.

        Output pixel (2m + a, 2n + b) reads upsampled rows 2m + a + dy, dy = 0, 1, 2, i.e. input
        rows m, m, m + 1 (a = 0) or m, m + 1, m + 1 (a = 1): a 2x2 conv on x whose taps are sums
        of the 3x3 taps. The four phases are computed as one conv with 4x the output channels,
        then interleaved. (B, C, h, w) -> (B, O, 2h - 2, 2w - 2).
        """
        taps = paddle.to_tensor(np.array([[[1, 1, 0], [0, 0, 1]], [[1, 0, 0], [0, 1, 1]]],
                                         np.float32)).astype(weight.dtype)   # (phase, tap, dy)
        out_channels = weight.shape[0]
        phases = []
        for a in range(2):
            rows = paddle.matmul(taps[a], weight)                             # (O, C, 2, 3)
            for b in range(2):
                phases.append(paddle.matmul(rows, taps[b], transpose_y=True))  # (O, C, 2, 2)
        y = F.conv2d(x, paddle.concat(phases, axis=0))  # (B, 4 * O, h - 1, w - 1), phase-major
        shape = x.shape if paddle.in_dynamic_mode() else paddle.shape(x)
        h, w = shape[2] - 1, shape[3] - 1
        y = y.reshape([-1, 2, 2, out_channels, h, w]).transpose([0, 3, 4, 1, 5, 2])
        return y.reshape([-1, out_channels, 2 * h, 2 * w])

    def _crop_input(self, src, bgr, idx):
        """Windows of src and bgr around the patches, zero outside the image (as the official
        crops of the zero-padded images).

        Returns (P, 6, wh, wh) src, bgr at half resolution (wh = 2 + 2 * pad_half, rows
        2i - pad_half...) and (P, 24, nb, nb) the full-resolution window (rows 4i - pad_full...,
        4 + 2 * pad_full = 2 * nb pixels) as 2x2 pixel blocks: channels (image, c, dy, dx).

        Each image gives two channels-last tables, made by strided convolutions (whose zero
        padding is the zero border): the means of its 2x2 blocks (bilinear downsampling by
        exactly 2: H and W are even) and the blocks' 12 values. The windows are plain gathers of
        table rows, already in the layout the convolutions read.
        """
        ph, pf = self._pad_half, self._pad_full
        nb = 2 + pf
        dtype = src.dtype
        means = paddle.to_tensor(_block_mean_kernel()).astype(dtype)
        pixels = paddle.to_tensor(_pixel_block_kernel()).astype(dtype)

        def windows(kernel, padding, size):
            """(P, size, size, 2 * kernel channels): both images' table rows 2i.., 2j.."""
            offsets = paddle.arange(size, dtype='int64')
            rows = (2 * idx[:, 1:2] + offsets).unsqueeze(2)  # (P, size, 1): rows in the padded table
            cols = (2 * idx[:, 2:3] + offsets).unsqueeze(1)  # (P, 1, size)
            zeros = paddle.zeros_like(rows * cols)           # (P, size, size)
            index = paddle.stack([idx[:, 0:1].unsqueeze(2) + zeros, rows + zeros, cols + zeros], axis=3)
            return paddle.concat([paddle.gather_nd(
                F.conv2d(x, kernel, stride=2, padding=padding).transpose([0, 2, 3, 1]), index)
                for x in (src, bgr)], axis=3)

        half = windows(means, 2 * ph, 2 + 2 * ph)
        blocks = windows(pixels, pf, nb)
        return half.transpose([0, 3, 1, 2]), blocks.transpose([0, 3, 1, 2])

    @staticmethod
    def blocks_to_pixels(blocks):
        """(P, 4 C, n, n) 2x2 pixel blocks, channels (c, dy, dx) -> (P, C, 2n, 2n) pixels."""
        p, channels, n = blocks.shape[0], blocks.shape[1] // 4, blocks.shape[2]
        if not paddle.in_dynamic_mode():
            p = -1
        x = blocks.reshape([p, channels, 2, 2, n, n]).transpose([0, 1, 4, 2, 5, 3])
        return x.reshape([p, channels, 2 * n, 2 * n])

    def _crop_coarse(self, coarse, idx, size):
        """Windows of the coarse output bilinearly upsampled to half resolution, (P, C, wh, wh).

        Equals cropping F.pad(F.interpolate(coarse, half size), pad_half) around each patch,
        without computing the upsampled image: window row r of patch (b, i, j) is half-res row
        y = 2i - pad_half + r, a blend of coarse rows i0(y), i1(y); all of them lie in n
        consecutive coarse rows from i0 of the first window row, so each patch needs an n x n
        coarse window and two interpolation matrices Ry, Rx (wh x n), whose rows are zero for
        y outside the image (the zero padding): window = Ry @ coarse_window @ Rx^T per channel,
        as two batched matmuls (rows with the channels folded into the columns, then columns).
        """
        ph = self._pad_half
        wh = 2 + 2 * ph
        # The source coordinates of the window rows span d = (wh - 1) * ratio, ratio = coarse /
        # half resolution <= 1 (<= 2 * backbone_scale: the coarse size is floor(H * scale));
        # floor(s_last) - floor(s_first) <= ceil(d), plus the i1 neighbour: ceil(d) + 2 rows.
        ratio = min(1.0, 2 * self.backbone_scale) if self.backbone_scale else 1.0
        n = math.ceil((wh - 1) * ratio - 1e-9) + 2
        if self.backbone_scale == 0.25:
            # the coarse size is exactly H / 4 (H is a multiple of 4): every window starts at the
            # same phase (s_first = i - 2 + 1/4 for pad_half 3), which needs one row less
            first, last = (math.floor((y + 0.5) / 2 - 0.5) for y in (-ph, wh - 1 - ph))
            n = last - first + 2
        H, W = size
        C = coarse.shape[1]
        h, w = spatial_size(coarse)
        if not paddle.in_dynamic_mode():
            h, w = paddle.cast(h, 'int64'), paddle.cast(w, 'int64')
        offsets = paddle.arange(wh, dtype='int64')
        window = paddle.arange(n, dtype='int64')

        def axis(pos, n_in, n_out):
            """Window source indices (P, n) and interpolation matrix (P, wh, n) along one axis."""
            y = 2 * pos - ph + offsets                                   # (P, wh) half-res
            i0, i1, w1 = source_coords(n_in, n_out, offset=y)
            inside = paddle.logical_and(y >= 0, y < n_out).astype(w1.dtype)
            start = i0[:, 0:1]
            src_index = paddle.minimum(start + window, paddle.full_like(start, 0) + (n_in - 1))
            m = paddle.zeros_like(paddle.expand(w1[:, 0:1].unsqueeze(2), [-1, wh, n]))
            m = paddle.put_along_axis(m, (i0 - start).unsqueeze(2), ((1 - w1) * inside).unsqueeze(2),
                                      axis=2, reduce='add')
            m = paddle.put_along_axis(m, (i1 - start).unsqueeze(2), (w1 * inside).unsqueeze(2),
                                      axis=2, reduce='add')
            return src_index, m

        rows, ry = axis(idx[:, 1:2], h, H // 2)
        cols, rx = axis(idx[:, 2:3], w, W // 2)
        zeros = paddle.zeros_like(rows.unsqueeze(2) * cols.unsqueeze(1))  # (P, n, n)
        index = paddle.stack([idx[:, 0:1].unsqueeze(2) + zeros, rows.unsqueeze(2) + zeros,
                              cols.unsqueeze(1) + zeros], axis=3)
        win = paddle.gather_nd(coarse.transpose([0, 2, 3, 1]), index)  # (P, n, n, C)
        x = paddle.matmul(ry, win.reshape([-1, n, n * C]))             # rows: (P, wh, n * C)
        x = paddle.matmul(rx.unsqueeze(1), x.reshape([-1, wh, n, C]))   # cols: (P, wh, wh, C)
        return x.transpose([0, 3, 1, 2]).astype(coarse.dtype)

    def _refine_full(self, src, bgr, pha, fgr, hid):
        H, W = spatial_size(src)
        half = [H // 2, W // 2]
        src_bgr = paddle.concat([src, bgr], axis=1)
        x = resize_bilinear(paddle.concat([hid, pha, fgr], axis=1), half, factor=self._factor(1 / 2))
        y = downsample_bilinear(src_bgr, half, factor=2)
        if self.kernel_size == 3:
            x = zero_pad(x, 3)
            y = zero_pad(y, 3)
        x = self._stage1(paddle.concat([x, y], axis=1))
        # (H/2 + 2) -> (H + 4) for k=3: again exactly twice the size, so nearest = repeat
        x = upsample_nearest2x(x)
        y = zero_pad(src_bgr, 2) if self.kernel_size == 3 else src_bgr
        x = self._stage2(paddle.concat([x, y], axis=1))
        ref = paddle.ones([batch_size(src), 1, H // 4, W // 4], dtype=src.dtype)
        return x[:, :1], x[:, 1:], ref

    def select_refinement_regions(self, err):
        """err (B, 1, h, w) -> ref (B, 1, h, w) float, 1 where the patch is to be refined."""
        if self.mode == 'thresholding':
            return (err > self.threshold).astype(err.dtype)
        shape = paddle.shape(err)
        flat = err.flatten(1)  # (B, h * w)
        # Asking for more patches than there are refines all of them (the official code fails).
        k = self.sample_pixels // 16
        if paddle.in_dynamic_mode():
            k = min(k, flat.shape[1])
        else:
            num = paddle.shape(flat)[1]
            k = paddle.minimum(num, paddle.full([], k, num.dtype))
        _, top = paddle.topk(flat, k, axis=1, sorted=False)
        ref = paddle.put_along_axis(paddle.zeros_like(flat), top, 1.0, axis=1)
        if self.prevent_oversampling:
            ref = ref * (flat > 0).astype(flat.dtype)
        return paddle.reshape(ref, shape)
