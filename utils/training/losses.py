"""Training losses of BackgroundMattingV2, as in the official train_base.py / train_refine.py.

Base stage (MattingBase, everything at the input resolution):

    L = L1(pha, pha*) + L1(sobel(pha), sobel(pha*)) + L1(fgr * m, fgr* * m) + MSE(err, |pha - pha*|)

with m = (pha* > 0) and the error target computed from the *detached* prediction.

Refine stage (MattingRefine): the alpha, Sobel and foreground terms at full resolution and
at the backbone resolution (ground truth bilinearly resized down), plus the error term at
full resolution: err_sm and pha_sm are bilinearly resized up and
MSE(err, |pha_sm_up - pha*|) is taken. The official refine loss does not detach pha_sm in
that term (unlike the base loss), so a gradient also flows into pha_sm through the error
target; this is reproduced as is.

`sobel` reproduces kornia's `sobel` (normalized 3x3 Sobel kernels, replicate padding,
magnitude sqrt(gx^2 + gy^2 + eps), eps = 1e-6): the eps keeps the gradient of the square root
finite in flat regions, where gx = gy = 0.

All losses are means over every element, like torch's F.l1_loss / F.mse_loss.

Optional, not in the official code (`unknown_weight` > 0, train.py --loss-unknown-weight): one
more term, the mean L1 alpha error over the evaluation's unknown region only (`unknown_region`),
so that the few soft pixels that the metrics score are not outweighed by the many easy ones.
Also optional (`foreground_weight` > 0, train.py --loss-foreground-weight): the mean L1 alpha
error over the trimap's definite foreground (`foreground_region`), so that the edge weight does
not buy sharper edges with holes punched into the subject.
And (`error_weight` > 0, train.py --loss-error-weight): the error term once more, this many times,
with its target detached (the official refine term's target is not), so that the features learn to
predict where the coarse alpha is wrong without that term pulling the coarse alpha towards its
own predicted error. Sampling refinement re-predicts only the patches with the largest predicted
error, so on large images the matte is as good as that ranking.
"""
import paddle
import paddle.nn.functional as F

from utils.evaluation import trimap as trimap_rules

__all__ = ['sobel', 'unknown_region', 'foreground_region', 'loss_terms_base', 'compute_loss_base', 'loss_terms_refine',
           'compute_loss_refine']

# The 3x3 Sobel x-derivative kernel divided by the sum of its absolute values (8), as kornia's
# normalized spatial_gradient; y is its transpose.
_SOBEL_X = [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]


def sobel(x, eps=1e-6):
    """Sobel gradient magnitude per channel.

    Args:
        x: (B, C, H, W) float tensor.
    Returns:
        (B, C, H, W): sqrt(gx^2 + gy^2 + eps) with normalized Sobel kernels and replicate padding.
    """
    channels = x.shape[1]
    kx = paddle.to_tensor(_SOBEL_X, dtype=x.dtype) / 8.0
    # One depthwise conv computes both derivatives: output channels (2c, 2c+1) = (gx, gy) of input c.
    kernel = paddle.stack([kx, kx.t()]).unsqueeze(1)  # (2, 1, 3, 3)
    kernel = paddle.tile(kernel, [channels, 1, 1, 1])  # (2C, 1, 3, 3)
    padded = F.pad(x, [1, 1, 1, 1], mode='replicate')
    g = F.conv2d(padded, kernel, groups=channels)  # (B, 2C, H, W)
    g = g.reshape([g.shape[0], channels, 2, g.shape[2], g.shape[3]])
    return paddle.sqrt((g * g).sum(axis=2) + eps)


def _grow(mask, steps):
    """Dilate a (B, 1, H, W) 0/1 mask `steps` times with the 3x3 cross (OpenCV's 3x3 ellipse,
    trimap_rules.KERNEL_SIZE)."""
    for _ in range(steps):
        mask = paddle.maximum(F.max_pool2d(mask, (3, 1), 1, (1, 0)), F.max_pool2d(mask, (1, 3), 1, (0, 1)))
    return mask


def unknown_region(true_pha, steps=trimap_rules.ITERATIONS):
    """The evaluation trimap's unknown region (utils.evaluation.trimap) of a ground-truth alpha.

    Unknown: within `steps` cross-dilations of a pixel that is not background (alpha > LOW)
    and of one that is not foreground (alpha < HIGH); outside the image counts as neither.

    Args:
        true_pha: (B, 1, H, W) ground-truth alpha in [0, 1].
    Returns:
        (B, 1, H, W) float32 mask of 0 / 1, no gradient.
    """
    near_subject = _grow((true_pha > trimap_rules.LOW).astype('float32'), steps)
    near_background = _grow((true_pha < trimap_rules.HIGH).astype('float32'), steps)
    return (near_subject * near_background).detach()


def foreground_region(true_pha, steps=trimap_rules.ITERATIONS):
    """The evaluation trimap's definite foreground: pixels farther than `steps` cross-dilations
    from any pixel that is not foreground (alpha < HIGH).

    Args:
        true_pha: (B, 1, H, W) ground-truth alpha in [0, 1].
    Returns:
        (B, 1, H, W) float32 mask of 0 / 1, no gradient.
    """
    return (1.0 - _grow((true_pha < trimap_rules.HIGH).astype('float32'), steps)).detach()


def _region_l1(pred_pha, true_pha, mask):
    """Mean |pred - true| over a 0/1 mask of the whole batch (0 where the mask is empty)."""
    mask = mask.astype(pred_pha.dtype)
    return (paddle.abs(pred_pha - true_pha) * mask).sum() / paddle.clip(mask.sum(), min=1.0)


def _optional_terms(pred_pha, true_pha, unknown_weight, foreground_weight, error_weight=0.0, pred_err=None,
                    true_err=None):
    """The optional terms: {'pha_l1_unknown'?, 'pha_l1_foreground'?, 'err_mse_extra'?} (weights > 0 only).

    pred_err, true_err: the error prediction and its target, both at pred_pha's size (the target
    is detached here).
    """
    terms = {}
    if error_weight > 0:
        terms['err_mse_extra'] = error_weight * F.mse_loss(pred_err, true_err.detach())
    if unknown_weight > 0:
        terms['pha_l1_unknown'] = unknown_weight * _region_l1(pred_pha, true_pha, unknown_region(true_pha))
    if foreground_weight > 0:
        terms['pha_l1_foreground'] = foreground_weight * _region_l1(pred_pha, true_pha,
                                                                    foreground_region(true_pha))
    return terms


def _resize(x, size):
    """Bilinear resize (B, C, h, w) -> (B, C, *size), half-pixel centres (kornia.resize's default)."""
    return F.interpolate(x, size=list(size), mode='bilinear', align_corners=False)


def loss_terms_base(pred_pha, pred_fgr, pred_err, true_pha, true_fgr, unknown_weight=0.0,
                    foreground_weight=0.0, error_weight=0.0):
    """The four terms of the base-stage loss, as a dict of scalar tensors.

    Args:
        pred_pha (B, 1, H, W), pred_fgr (B, 3, H, W), pred_err (B, 1, H, W): MattingBase outputs.
        true_pha (B, 1, H, W), true_fgr (B, 3, H, W): ground truth.
        unknown_weight: > 0 adds 'pha_l1_unknown', this times the mean alpha error over the
            unknown region (see the module docstring).
        foreground_weight: > 0 adds 'pha_l1_foreground', the same over the definite foreground.
        error_weight: > 0 adds 'err_mse_extra', this times 'err_mse' (see the module docstring).
    Returns:
        {'pha_l1', 'pha_sobel', 'fgr_l1', 'err_mse'[, 'pha_l1_unknown'][, 'pha_l1_foreground']
        [, 'err_mse_extra']}; their sum is `compute_loss_base`.
    """
    true_err = paddle.abs(pred_pha.detach() - true_pha)
    true_msk = (true_pha != 0).astype(pred_fgr.dtype)
    terms = {
        'pha_l1': F.l1_loss(pred_pha, true_pha),
        'pha_sobel': F.l1_loss(sobel(pred_pha), sobel(true_pha)),
        'fgr_l1': F.l1_loss(pred_fgr * true_msk, true_fgr * true_msk),
        'err_mse': F.mse_loss(pred_err, true_err),
    }
    terms.update(_optional_terms(pred_pha, true_pha, unknown_weight, foreground_weight, error_weight,
                                 pred_err, true_err))
    return terms


def compute_loss_base(pred_pha, pred_fgr, pred_err, true_pha, true_fgr, unknown_weight=0.0,
                      foreground_weight=0.0, error_weight=0.0):
    """Base-stage loss (scalar tensor); see `loss_terms_base` for the shapes."""
    return paddle.add_n(list(loss_terms_base(pred_pha, pred_fgr, pred_err, true_pha, true_fgr,
                                             unknown_weight, foreground_weight, error_weight).values()))


def loss_terms_refine(pred_pha, pred_fgr, pred_pha_sm, pred_fgr_sm, pred_err_sm, true_pha, true_fgr,
                      unknown_weight=0.0, foreground_weight=0.0, error_weight=0.0):
    """The seven terms of the refine-stage loss, as a dict of scalar tensors.

    Args:
        pred_pha (B, 1, H, W), pred_fgr (B, 3, H, W): full-resolution MattingRefine outputs.
        pred_pha_sm (B, 1, h, w), pred_fgr_sm (B, 3, h, w), pred_err_sm (B, 1, h, w):
            backbone-resolution outputs.
        true_pha (B, 1, H, W), true_fgr (B, 3, H, W): full-resolution ground truth.
        unknown_weight: > 0 adds 'pha_l1_unknown' at full resolution (as `loss_terms_base`);
            its gradient reaches the coarse alpha through the upsampled pixels not refined.
        foreground_weight: > 0 adds 'pha_l1_foreground' at full resolution, likewise.
        error_weight: > 0 adds 'err_mse_extra', this times 'err_mse' with a detached target.
    Returns:
        {'pha_l1', 'pha_l1_sm', 'pha_sobel', 'pha_sobel_sm', 'fgr_l1', 'fgr_l1_sm', 'err_mse'
        [, 'pha_l1_unknown'][, 'pha_l1_foreground'][, 'err_mse_extra']}; their sum is
        `compute_loss_refine`.
    """
    size_sm = pred_pha_sm.shape[2:]
    size_lg = true_pha.shape[2:]
    true_pha_sm = _resize(true_pha, size_sm)
    true_fgr_sm = _resize(true_fgr, size_sm)
    true_msk = (true_pha != 0).astype(pred_fgr.dtype)
    true_msk_sm = (true_pha_sm != 0).astype(pred_fgr_sm.dtype)
    # Not detached, as in the official refine loss (see the module docstring).
    true_err = paddle.abs(_resize(pred_pha_sm, size_lg) - true_pha)
    pred_err = _resize(pred_err_sm, size_lg)
    terms = {
        'pha_l1': F.l1_loss(pred_pha, true_pha),
        'pha_l1_sm': F.l1_loss(pred_pha_sm, true_pha_sm),
        'pha_sobel': F.l1_loss(sobel(pred_pha), sobel(true_pha)),
        'pha_sobel_sm': F.l1_loss(sobel(pred_pha_sm), sobel(true_pha_sm)),
        'fgr_l1': F.l1_loss(pred_fgr * true_msk, true_fgr * true_msk),
        'fgr_l1_sm': F.l1_loss(pred_fgr_sm * true_msk_sm, true_fgr_sm * true_msk_sm),
        'err_mse': F.mse_loss(pred_err, true_err),
    }
    terms.update(_optional_terms(pred_pha, true_pha, unknown_weight, foreground_weight, error_weight,
                                 pred_err, true_err))
    return terms


def compute_loss_refine(pred_pha, pred_fgr, pred_pha_sm, pred_fgr_sm, pred_err_sm, true_pha, true_fgr,
                        unknown_weight=0.0, foreground_weight=0.0, error_weight=0.0):
    """Refine-stage loss (scalar tensor); see `loss_terms_refine` for the shapes."""
    return paddle.add_n(list(loss_terms_refine(pred_pha, pred_fgr, pred_pha_sm, pred_fgr_sm, pred_err_sm,
                                               true_pha, true_fgr, unknown_weight, foreground_weight,
                                               error_weight).values()))
