"""Evaluation trimaps made from ground-truth alpha, as the BackgroundMattingV2 paper describes.

The paper generates its evaluation trimaps from the true alpha by thresholding and
morphology: alpha thresholds 0.06 / 0.96, and 10 iterations of dilation and erosion with
a 3x3 elliptical kernel. How those combine is not spelled out; this module reads it as
the usual Deep-Image-Matting-style construction:

* definite background: alpha <= 0.06, definite foreground: alpha >= 0.96;
* the "not background" mask (alpha > 0.06) is dilated 10 times -> whatever stays outside
  it is background (0);
* the foreground mask (alpha >= 0.96) is eroded 10 times -> what survives is foreground (255);
* everything else is unknown (128).

So the unknown region is every partially transparent pixel plus a band of 10 kernel steps
on both sides of it. OpenCV's 3x3 ellipse is the 4-neighbour cross, so 10 iterations
reach 10 pixels in city-block distance. Pixels outside the image count as neither
foreground nor background (OpenCV's default morphology border), so a subject cut by the
frame edge does not get an unknown band along the edge.
"""
import cv2
import numpy as np

from utils.image_io import to_uint8

BACKGROUND, UNKNOWN, FOREGROUND = 0, 128, 255
# The paper's thresholds, band width and kernel (also the training loss's unknown region,
# whose max-pool dilation assumes this kernel: the 3x3 ellipse is the 4-neighbour cross).
LOW, HIGH, ITERATIONS, KERNEL_SIZE = 0.06, 0.96, 10, 3


def make_trimap(alpha, low=LOW, high=HIGH, iterations=ITERATIONS, kernel_size=KERNEL_SIZE):
    """Trimap (uint8: 0 background, 128 unknown, 255 foreground) from a ground-truth alpha.

    `alpha` is a uint8 map or a float map in [0, 1] (quantised to 8 bit first, since the
    protocol works on 8-bit mattes). See the module docstring for the construction.
    """
    alpha = np.asarray(alpha)
    if alpha.ndim != 2:
        raise ValueError(f'alpha must be a 2-D map, got shape {alpha.shape}')
    if alpha.dtype != np.uint8:
        alpha = to_uint8(alpha)
    # Compare in 8-bit levels: k/255 > low  <=>  k > low*255 (no float ties are possible
    # for the default thresholds, 15.3 and 244.8).
    not_background = (alpha > low * 255.0).astype(np.uint8)
    foreground = (alpha >= high * 255.0).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel_size, kernel_size))
    dilated = cv2.dilate(not_background, kernel, iterations=iterations)
    eroded = cv2.erode(foreground, kernel, iterations=iterations)
    trimap = np.full(alpha.shape, UNKNOWN, dtype=np.uint8)
    trimap[dilated == 0] = BACKGROUND
    trimap[eroded == 1] = FOREGROUND
    return trimap
