"""The BackgroundMattingV2 refiner: re-predicts selected 4x4 patches at full resolution."""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .utils import batch_size, spatial_size

REFINE_MODES = ('full', 'sampling', 'thresholding')


def crop_patches(x, idx, size, padding):
    """Crop the windows around selected patch locations with `paddle.gather_nd`.

    Args:
        x: image (B, C, H, W).
        idx: (P, 3) int64 patch locations (b, i, j) on a grid of stride `size`.
        size: patch size, also the stride of the grid.
        padding: context added on every side (x is zero-padded by it first).
    Returns:
        (P, C, size + 2 * padding, size + 2 * padding)

    Only the P windows are materialised, so memory grows with the number of patches, not with
    the image (the official `unfold` would view every window of the image).
    """
    if padding:
        x = F.pad(x, [padding] * 4)
    window = size + 2 * padding
    x = x.transpose([0, 2, 3, 1])  # channels last: each gathered pixel is one contiguous row
    offsets = paddle.arange(window, dtype=idx.dtype)
    zeros = paddle.zeros([1, window, window], dtype=idx.dtype)
    # (P, w, w) index planes by broadcasting (b, row, col) against the window offsets.
    b = idx[:, 0].reshape([-1, 1, 1]) + zeros
    rows = (idx[:, 1:2] * size + offsets).reshape([-1, window, 1]) + zeros
    cols = (idx[:, 2:3] * size + offsets).reshape([-1, 1, window]) + zeros
    patches = paddle.gather_nd(x, paddle.stack([b, rows, cols], axis=-1))  # (P, w, w, C)
    return patches.transpose([0, 3, 1, 2])


def replace_patches(x, patches, idx, spare_row=False):
    """Write patches back into an image with a scatter.

    Args:
        x: image (B, C, H, W), H and W divisible by the patch size p.
        patches: (P, C, p, p) replacement patches.
        idx: (P, 3) int64 patch locations (b, i, j) on the grid of stride p (unique).
        spare_row: the last patch is a placeholder to be discarded (see `Refiner`); its index
            is ignored and it is written to a spare row that is dropped afterwards.
    Returns:
        (B, C, H, W) with the selected patches replaced.
    """
    C, p = patches.shape[1], patches.shape[-1]
    B, (H, W) = batch_size(x), spatial_size(x)
    hp, wp = H // p, W // p
    # View the image as rows of patches (B * hp * wp, C * p * p) ordered (c, i, j) like
    # patches.reshape([P, C * p * p]), overwrite the selected rows, and view it back.
    grid = x.reshape([B, C, hp, p, wp, p]).transpose([0, 2, 4, 1, 3, 5])
    flat = grid.reshape([-1, C * p * p])
    rows = (idx[:, 0] * hp + idx[:, 1]) * wp + idx[:, 2]
    updates = patches.reshape([-1, C * p * p])
    if spare_row:
        num_rows = paddle.shape(flat)[0:1].astype(rows.dtype)
        rows = paddle.concat([rows[:-1], num_rows])
        flat = paddle.concat([flat, paddle.zeros([1, C * p * p], flat.dtype)])
    flat = paddle.scatter(flat, rows, updates, overwrite=True)
    if spare_row:
        flat = flat[:-1]
    grid = flat.reshape([B, hp, wp, C, p, p]).transpose([0, 3, 1, 4, 2, 5])
    return grid.reshape([B, C, H, W])


class Refiner(nn.Layer):
    """Refines the coarse output at full resolution, patch by patch.

    Args:
        mode: 'full' refines every pixel, 'sampling' the `sample_pixels // 16` 4x4 patches with the
            largest error, 'thresholding' the patches whose error exceeds `threshold`.
        sample_pixels: pixel budget in 'sampling' mode.
        threshold: error threshold in 'thresholding' mode.
        kernel_size: 3 (the paper) or 1 (faster, less context).
        prevent_oversampling: in 'sampling' mode, skip selected patches whose error is 0.

    Inputs:
        src, bgr: (B, 3, H, W) full resolution, H and W divisible by 4.
        pha: (B, 1, h, w), fgr: (B, 3, h, w) (foreground residual), err: (B, 1, h, w),
        hid: (B, 32, h, w): the coarse outputs at backbone resolution.
    Outputs:
        pha (B, 1, H, W), fgr (B, 3, H, W) (residual, not clamped), ref (B, 1, H/4, W/4):
        1 where a 4x4 patch was refined, else 0.
    """

    def __init__(self, mode='sampling', sample_pixels=80_000, threshold=0.1, kernel_size=3,
                 prevent_oversampling=True):
        super().__init__()
        if mode not in REFINE_MODES:
            raise ValueError(f'refine_mode must be one of {REFINE_MODES}, got {mode!r}')
        if kernel_size not in (1, 3):
            raise ValueError(f'refine_kernel_size must be 1 or 3, got {kernel_size!r}')
        if mode == 'sampling' and sample_pixels < 16:
            raise ValueError(f'refine_sample_pixels must be at least 16 (one 4x4 patch), got {sample_pixels}')
        self.mode = mode
        self.sample_pixels = sample_pixels
        self.threshold = threshold
        self.kernel_size = kernel_size
        self.prevent_oversampling = prevent_oversampling

        channels = [32, 24, 16, 12, 4]
        self.conv1 = nn.Conv2D(channels[0] + 6 + 4, channels[1], kernel_size, bias_attr=False)
        self.bn1 = nn.BatchNorm2D(channels[1])
        self.conv2 = nn.Conv2D(channels[1], channels[2], kernel_size, bias_attr=False)
        self.bn2 = nn.BatchNorm2D(channels[2])
        self.conv3 = nn.Conv2D(channels[2] + 6, channels[3], kernel_size, bias_attr=False)
        self.bn3 = nn.BatchNorm2D(channels[3])
        self.conv4 = nn.Conv2D(channels[3], channels[4], kernel_size)
        self.relu = nn.ReLU()

    def _stage1(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(x)))

    def _stage2(self, x):
        x = self.relu(self.bn3(self.conv3(x)))
        return self.conv4(x)

    def forward(self, src, bgr, pha, fgr, err, hid):
        H, W = spatial_size(src)
        half, quarter = [H // 2, W // 2], [H // 4, W // 4]
        src_bgr = paddle.concat([src, bgr], axis=1)
        coarse = paddle.concat([hid, pha, fgr], axis=1)
        if self.mode == 'full':
            return self._refine_full(src, src_bgr, coarse)

        traced = not paddle.in_dynamic_mode()
        if traced or spatial_size(err) != quarter:
            err = F.interpolate(err, size=quarter, mode='bilinear', align_corners=False)
        ref = self.select_refinement_regions(err)
        idx = paddle.nonzero(ref.squeeze(1))  # (P, 3): (b, i, j) of each selected 4x4 patch
        out = F.interpolate(paddle.concat([pha, fgr], axis=1), size=[H, W], mode='bilinear',
                            align_corners=False)
        if traced:
            # A traced graph cannot skip the refinement when no patch is selected, and ops on
            # empty batches are not safe in every inference backend: append one placeholder
            # patch (location 0, 0, 0) whose result replace_patches discards.
            idx = paddle.concat([idx, paddle.zeros([1, 3], idx.dtype)])
        if traced or idx.shape[0] > 0:
            out = self._refine_patches(coarse, src_bgr, out, idx, half, spare_row=traced)
        return out[:, :1], out[:, 1:], ref

    def _refine_patches(self, coarse, src_bgr, out, idx, half, spare_row):
        """Re-predict the patches at `idx` (P, 3) and write them into `out` (B, 4, H, W)."""
        pad_half, pad_full = (3, 2) if self.kernel_size == 3 else (0, 0)
        x = F.interpolate(coarse, size=half, mode='bilinear', align_corners=False)
        y = F.interpolate(src_bgr, size=half, mode='bilinear', align_corners=False)
        x = paddle.concat([crop_patches(x, idx, 2, pad_half), crop_patches(y, idx, 2, pad_half)], axis=1)
        x = self._stage1(x)
        # 4x4 (k=3) or 2x2 (k=1) -> twice the size, as the official nearest upsampling
        x = F.interpolate(x, scale_factor=2, mode='nearest')
        x = paddle.concat([x, crop_patches(src_bgr, idx, 4, pad_full)], axis=1)
        return replace_patches(out, self._stage2(x), idx, spare_row)

    def _refine_full(self, src, src_bgr, coarse):
        H, W = spatial_size(src)
        half = [H // 2, W // 2]
        x = F.interpolate(coarse, size=half, mode='bilinear', align_corners=False)
        y = F.interpolate(src_bgr, size=half, mode='bilinear', align_corners=False)
        if self.kernel_size == 3:
            x = F.pad(x, [3] * 4)
            y = F.pad(y, [3] * 4)
        x = self._stage1(paddle.concat([x, y], axis=1))
        # (H/2 + 2) -> (H + 4) for k=3: again exactly twice the size, so nearest = repeat
        x = F.interpolate(x, scale_factor=2, mode='nearest')
        y = F.pad(src_bgr, [2] * 4) if self.kernel_size == 3 else src_bgr
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
