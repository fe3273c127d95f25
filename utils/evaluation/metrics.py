"""Matting metrics of the BackgroundMattingV2 paper (SAD, MSE, Grad, Conn, FG-MSE).

These follow the MATLAB evaluation shipped with the BackgroundMattingV2 repository
(`eval/benchmark.m`), whose per-metric functions come from Deep Image Matting
(`compute_sad_loss.m`, `compute_mse_loss.m`, `compute_gradient_loss.m`,
`compute_connectivity_error.m`, `gaussgradient.m`). They were re-implemented here from
their published definitions with numpy/scipy:

* maps are 8-bit images read as ``k / 255``; ground truth, prediction and trimap are
  cropped at the top-left to the largest multiple of 4 (``benchmark.m`` does
  ``idivide(size, 4) * 4``);
* every error is counted only where ``trimap == 128`` (the unknown region);
* SAD  = sum |p - g| / 1000;
* MSE  = mean (p - g)^2 over the unknown region (``compute_all`` reports it x1000, as the
  paper's table does);
* Grad = sum (|grad p| - |grad g|)^2, each map min-max normalised first (``mat2gray``) and
  differentiated with ``gaussgradient(map, 1.4)``;
* Conn = sum |phi_p - phi_g| with the degree-of-connectivity phi of Rhemann et al.,
  thresholds 0:0.1:1 and 4-connected components;
* FG-MSE = mean over RGB of the MSE of the foregrounds, each zeroed where the true alpha
  is 0 (``compute_all`` reports it x1000).

The low-level functions (`sad`, `mse`, `gradient_error`, `connectivity_error`, `fg_mse`)
return exactly what the MATLAB functions return and accept float maps in [0, 1] or uint8
maps; `compute_all` applies the whole protocol (8-bit quantisation, crop, x1000 scaling).
Known deviations, all at degenerate inputs: MATLAB's MSE is 0/0 = NaN for an empty
unknown region, here it is 0; MATLAB works partly in single precision, here everything
is float64 (differences are ~1e-6 relative; the threshold decisions in Conn cannot flip,
see `connectivity_error`).
"""
import numpy as np
from scipy import ndimage

from utils.image_io import to_uint8

UNKNOWN = 128  # trimap value of the unknown region, as in the MATLAB code (trimap == 128)

# Mean metrics the paper reports for MattingRefine ResNet-50 on PhotoMatte85 (Table 1),
# in the same units as `compute_all`.
PAPER_PHOTOMATTE85_RESNET50 = {'SAD': 8.65, 'MSE': 9.57, 'Grad': 8736.0, 'Conn': 6637.0, 'FG-MSE': 13.82}

METRIC_NAMES = ('SAD', 'MSE', 'Grad', 'Conn', 'FG-MSE', 'SAD-image')


def as_unit_float(img):
    """Return `img` as float64 in [0, 1]: uint8 is divided by 255, floats are checked, not rescaled."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img.astype(np.float64) / 255.0
    if img.dtype == np.bool_:
        return img.astype(np.float64)
    img = img.astype(np.float64)
    if img.size and (np.nanmin(img) < 0.0 or np.nanmax(img) > 1.0):
        raise ValueError(f'expected values in [0, 1], got range [{img.min():g}, {img.max():g}]; '
                         f'pass uint8 maps or floats scaled to [0, 1]')
    return img


def quantize_8bit(img):
    """Round a [0, 1] map to the nearest of the 256 8-bit levels (as if saved to PNG and read back)."""
    return to_uint8(np.asarray(img, dtype=np.float64)).astype(np.float64) / 255.0


def crop_to_multiple_of_4(img):
    """Crop the bottom/right edge so height and width are multiples of 4 (as ``benchmark.m`` does)."""
    h, w = img.shape[:2]
    return img[:h // 4 * 4, :w // 4 * 4]


def unknown_mask(trimap):
    """Boolean mask of the unknown region: trimap value 128 (uint8) or 128/255 (float)."""
    trimap = np.asarray(trimap)
    if trimap.dtype != np.uint8:
        trimap = to_uint8(trimap)
    return trimap == UNKNOWN


def _check_pair(pred, target, trimap):
    pred, target = as_unit_float(pred), as_unit_float(target)
    mask = unknown_mask(trimap)
    if pred.shape != target.shape or mask.shape != target.shape[:2]:
        raise ValueError(f'shape mismatch: prediction {pred.shape}, ground truth {target.shape}, '
                         f'trimap {mask.shape}')
    return pred, target, mask


def sad(pred, target, trimap):
    """Sum of absolute differences over the unknown region, divided by 1000 (``compute_sad_loss``)."""
    pred, target, mask = _check_pair(pred, target, trimap)
    return float(np.abs(pred - target)[mask].sum() / 1000.0)


def sad_image(pred, target):
    """Sum of absolute differences over the whole image, divided by 1000: unlike SAD it also
    counts the definite foreground and background the trimap leaves out (holes in a solid
    subject, background kept as foreground)."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if pred.shape != target.shape:
        raise ValueError(f'shape mismatch: prediction {pred.shape}, ground truth {target.shape}')
    return float(np.abs(pred - target).sum() / 1000.0)


def mse(pred, target, trimap):
    """Mean squared error over the unknown region (``compute_mse_loss``), NOT scaled by 1000.

    For a colour image (H, W, C) this returns one value per channel, like the MATLAB code
    does when the 2-D trimap broadcasts over the channels. Empty unknown region -> 0.
    """
    pred, target, mask = _check_pair(pred, target, trimap)
    count = int(mask.sum())
    if count == 0:
        return 0.0 if pred.ndim == 2 else np.zeros(pred.shape[2])
    sq = (pred - target) ** 2
    result = sq[mask].sum(axis=0) / count  # boolean indexing of (H, W[, C]) keeps the channel axis
    return float(result) if pred.ndim == 2 else result


def _gaussgradient_factors(sigma=1.4, epsilon=1e-2):
    """The 1-D smoothing and derivative factors of the ``gaussgradient`` kernel, each of unit L2 norm.

    The half size is where MATLAB's ``gaussgradient`` puts it:
    ceil(sigma * sqrt(-2 ln(sqrt(2 pi) sigma epsilon))), i.e. 4 (a 9-tap kernel) for
    sigma 1.4. The Gaussian's constant factors cancel in the normalisation.
    """
    half = int(np.ceil(sigma * np.sqrt(-2.0 * np.log(np.sqrt(2.0 * np.pi) * sigma * epsilon))))
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    smooth = np.exp(-offsets ** 2 / (2.0 * sigma ** 2))
    deriv = -offsets * smooth  # derivative of the Gaussian, up to a positive constant
    return smooth / np.linalg.norm(smooth), deriv / np.linalg.norm(deriv)


def gaussgradient_kernel(sigma=1.4):
    """The 2-D x-derivative kernel of MATLAB ``gaussgradient`` (rows: y offset, columns: x offset).

    Entry (y, x) is gauss(y) * dgauss(x) with dgauss(x) = -x gauss(x) / sigma^2, scaled to
    unit L2 (Frobenius) norm; the y kernel is its transpose. Since the norm of an outer
    product is the product of the norms, it is the outer product of the unit-norm factors.
    """
    smooth, deriv = _gaussgradient_factors(sigma)
    return np.outer(smooth, deriv)


def gaussian_gradient(img, sigma=1.4):
    """x and y gradients of a 2-D map like MATLAB ``gaussgradient``.

    ``gaussgradient`` filters with ``imfilter(IM, h, 'replicate', 'conv')``: a true
    convolution with edge replication. The kernel is an outer product, so two 1-D
    convolutions give the same result (edge replication commutes with the separable sum);
    scipy's ``mode='nearest'`` is edge replication and ``convolve1d`` flips the kernel like
    'conv' does.
    """
    smooth, deriv = _gaussgradient_factors(sigma)
    img = np.asarray(img, dtype=np.float64)
    gx = ndimage.convolve1d(ndimage.convolve1d(img, smooth, axis=0, mode='nearest'),
                            deriv, axis=1, mode='nearest')
    gy = ndimage.convolve1d(ndimage.convolve1d(img, deriv, axis=0, mode='nearest'),
                            smooth, axis=1, mode='nearest')
    return gx, gy


def mat2gray(img):
    """Min-max normalise to [0, 1] like MATLAB ``mat2gray``; a constant map stays as it is."""
    img = np.asarray(img, dtype=np.float64)
    lo, hi = float(img.min()), float(img.max())
    if hi == lo:
        # MATLAB returns the constant map unchanged; its gradient is 0 either way because
        # the derivative kernel sums to zero.
        return img.copy()
    return (img - lo) / (hi - lo)


def gradient_error(pred, target, trimap, sigma=1.4):
    """Gradient error (``compute_gradient_loss``): sum over unknown of (|grad p| - |grad g|)^2.

    Both maps are min-max normalised first (``mat2gray``), so the result does not depend
    on whether they are given as 0..255 or 0..1. Reported raw, as in the paper.
    """
    pred, target, mask = _check_pair(pred, target, trimap)
    pred_x, pred_y = gaussian_gradient(mat2gray(pred), sigma)
    target_x, target_y = gaussian_gradient(mat2gray(target), sigma)
    pred_amp = np.sqrt(pred_x ** 2 + pred_y ** 2)
    target_amp = np.sqrt(target_x ** 2 + target_y ** 2)
    return float(((pred_amp - target_amp) ** 2)[mask].sum())


_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


def _largest_component(binary):
    """Mask of the largest 4-connected component of `binary` (all False if it is empty).

    MATLAB's ``bwconncomp`` numbers components in column-major scan order and ``max``
    picks the first of equally large ones; labelling the transpose with scipy (which
    numbers in row-major order) reproduces that order, so ties resolve the same way.
    """
    labels, count = ndimage.label(binary.T, structure=_FOUR_CONNECTED)
    if count == 0:
        return np.zeros_like(binary, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0  # background
    return (labels == int(np.argmax(sizes))).T


def connectivity_error(pred, target, trimap, step=0.1):
    """Connectivity error (``compute_connectivity_error``, Rhemann et al. 2009), step 0.1.

    For thresholds t = step, 2 step, ..., 1, omega_t is the largest 4-connected component
    of (p >= t) & (g >= t). Each pixel's level l is the threshold just below the first t
    at which it falls out of omega_t (1 if it never does). With d = alpha - l,
    phi = 1 - d * (d >= 0.15), and the error is sum over unknown of |phi_p - phi_g|.

    The thresholds are computed as i / n (not i * step) so that 8-bit values that equal a
    threshold exactly (51/255 = 0.2, ...) compare as equal, as they do in MATLAB; with
    8-bit maps no other comparison is within 1e-3 of its threshold, so float64 rounding
    cannot change a decision.
    """
    pred, target, mask = _check_pair(pred, target, trimap)
    n = int(round(1.0 / step))
    if not np.isclose(n * step, 1.0):
        raise ValueError(f'step must divide 1 evenly, got {step}')
    thresholds = np.arange(n + 1) / n
    level = np.full(pred.shape, -1.0)
    for i in range(1, n + 1):
        omega = _largest_component((pred >= thresholds[i]) & (target >= thresholds[i]))
        level[(level == -1.0) & ~omega] = thresholds[i - 1]
    level[level == -1.0] = 1.0
    pred_d = pred - level
    target_d = target - level
    pred_phi = 1.0 - pred_d * (pred_d >= 0.15)
    target_phi = 1.0 - target_d * (target_d >= 0.15)
    return float(np.abs(pred_phi - target_phi)[mask].sum())


def fg_mse(pred_fgr, true_fgr, true_pha, trimap):
    """Foreground MSE as in ``benchmark.m``: both foregrounds zeroed where the true alpha is
    0, per-channel MSE over the unknown region, averaged over the channels. Not x1000."""
    pred_fgr, true_fgr = as_unit_float(pred_fgr), as_unit_float(true_fgr)
    if pred_fgr.ndim != 3 or pred_fgr.shape != true_fgr.shape:
        raise ValueError(f'foregrounds must be (H, W, C) of equal shape, got prediction '
                         f'{pred_fgr.shape}, ground truth {true_fgr.shape}')
    visible = (as_unit_float(true_pha) > 0)[:, :, None]
    return float(np.mean(mse(pred_fgr * visible, true_fgr * visible, trimap)))


def compute_all(pred_pha, true_pha, trimap, pred_fgr=None, true_fgr=None):
    """All five metrics for one image under the paper's protocol, in the paper's units.

    Maps may be float in [0, 1] or uint8; floats are first quantised to 8 bit, as the
    MATLAB code reads PNG files. Everything is cropped to multiples of 4. Returns a dict
    with 'SAD', 'MSE' (x1000), 'Grad', 'Conn', 'FG-MSE' (x1000; NaN when either
    foreground is None), 'SAD-image' (SAD over the whole image, not in the paper) and
    'unknown_pixels'.
    """
    def prepare(img):
        img = np.asarray(img)
        img = img.astype(np.float64) / 255.0 if img.dtype == np.uint8 else quantize_8bit(as_unit_float(img))
        return crop_to_multiple_of_4(img)

    pred_pha, true_pha = prepare(pred_pha), prepare(true_pha)
    trimap = crop_to_multiple_of_4(np.asarray(trimap))
    result = {
        'SAD': sad(pred_pha, true_pha, trimap),
        'MSE': mse(pred_pha, true_pha, trimap) * 1000.0,
        'Grad': gradient_error(pred_pha, true_pha, trimap),
        'Conn': connectivity_error(pred_pha, true_pha, trimap),
        'FG-MSE': float('nan'),
        'SAD-image': sad_image(pred_pha, true_pha),
        'unknown_pixels': int(unknown_mask(trimap).sum()),
    }
    if pred_fgr is not None and true_fgr is not None:
        result['FG-MSE'] = fg_mse(prepare(pred_fgr), prepare(true_fgr), true_pha, trimap) * 1000.0
    return result
