"""Align a background plate to a source frame with a homography (`--preprocess-alignment`).

With a hand-held camera the plate is shot from a slightly different position than each source
frame, and the network reads every misregistered edge as foreground. As the official
inference scripts offer, we estimate a homography from the plate to the frame from matched
local features and warp the plate onto the frame:

1. ORB keypoints and binary descriptors on grayscale copies of both images (downscaled to at
   most `max_side` pixels: features at that scale are enough for a global warp and much
   faster on 4K frames);
2. brute-force Hamming matching with Lowe's ratio test, which drops ambiguous matches in
   repetitive texture before RANSAC has to;
3. `cv2.findHomography` with RANSAC: matches on the foreground (which the plate lacks)
   become outliers;
4. sanity checks (enough inliers, orientation kept, no extreme scaling), because a wrong
   homography is far worse than none: on failure the plate is returned unchanged and the
   reason reported, so that the caller can warn and go on.

Where the warped plate does not cover the frame, the source pixels are used (as the official
scripts do): there the plate has no information, and src == bgr tells the network "background"
instead of inventing a border that it would read as foreground.
"""
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class AlignmentResult:
    """What `align_background` did: the homography (plate -> source pixel coordinates) and the
    number of RANSAC inliers on success, or a one-line `reason` when it fell back."""
    homography: np.ndarray = None
    inliers: int = 0
    matches: int = 0
    reason: str = ''

    @property
    def ok(self):
        return self.homography is not None


def _gray_uint8(img, scale):
    """HWC float [0, 1] RGB (or HW) -> uint8 grayscale, resized by `scale`."""
    if img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img, dtype=np.float32), cv2.COLOR_RGB2GRAY)
    gray = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if scale != 1.0:
        h, w = gray.shape
        gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))),
                          interpolation=cv2.INTER_AREA)
    return gray


def _plausible(homography, width, height, max_scale_change):
    """Reject homographies that flip, fold or wildly rescale the image (RANSAC on a few
    coincidental matches can return such things)."""
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    warped = cv2.perspectiveTransform(corners[None], homography)[0]
    if not np.all(np.isfinite(warped)):
        return False
    # all corners must stay in front of the camera (positive projective weight)
    weights = homography[2, 0] * corners[:, 0] + homography[2, 1] * corners[:, 1] + homography[2, 2]
    if np.any(weights <= 0):
        return False
    if not cv2.isContourConvex(warped.reshape(-1, 1, 2)):
        return False
    area_ratio = cv2.contourArea(warped) / float(width * height)
    # the signed area keeps its sign when the corner order (orientation) is kept
    signed = cv2.contourArea(warped, oriented=True) * cv2.contourArea(corners, oriented=True)
    return signed > 0 and 1.0 / max_scale_change <= area_ratio <= max_scale_change


def estimate_homography(src, bgr, max_side=1024, n_features=5000, ratio=0.8, min_inliers=15,
                        ransac_threshold=3.0, max_scale_change=2.0, fast_thresholds=(20, 5)):
    """Homography mapping plate (bgr) pixel coordinates to source pixel coordinates.

    Args:
        src, bgr: HWC float32 RGB images in [0, 1] (sizes may differ).
        max_side: features are computed on copies whose longer side is at most this.
        n_features: ORB keypoints per image.
        ratio: Lowe ratio test threshold (best / second-best descriptor distance).
        min_inliers: fewer RANSAC inliers than this counts as no homography.
        ransac_threshold: RANSAC reprojection threshold in pixels of the downscaled copies.
        max_scale_change: the plate's area may change by at most this factor.
        fast_thresholds: ORB corner thresholds tried in turn. The default (20) finds few
            corners in plain scenes (walls, floors) next to a busy foreground; a low one finds
            enough there but costs more time, so it is only the second attempt.
    Returns: AlignmentResult (homography None, with a reason, when none was found).
    """
    scale = min(1.0, max_side / max(src.shape[:2] + bgr.shape[:2]))
    gray_src, gray_bgr = _gray_uint8(src, scale), _gray_uint8(bgr, scale)
    result = None
    for threshold in fast_thresholds:
        result = _match(gray_src, gray_bgr, n_features, threshold, ratio, min_inliers, ransac_threshold)
        if result.ok:
            break
    if not result.ok:
        return result
    # The homography was found between the downscaled copies: conjugate it by the scaling.
    s = np.diag([scale, scale, 1.0])
    homography = np.linalg.inv(s) @ result.homography @ s
    homography /= homography[2, 2]
    if not _plausible(homography, bgr.shape[1], bgr.shape[0], max_scale_change):
        return AlignmentResult(matches=result.matches, inliers=result.inliers,
                               reason='the homography found is implausible (flips or rescales the plate)')
    result.homography = homography
    return result


def _match(gray_src, gray_bgr, n_features, fast_threshold, ratio, min_inliers, ransac_threshold):
    """ORB features, ratio-tested matches and a RANSAC homography between two gray images."""
    # ORB ignores a border of `edgeThreshold` pixels and describes `patchSize` patches (31 by
    # default), which leaves nothing of a thumbnail: shrink both for small images.
    patch = int(np.clip(min(gray_src.shape + gray_bgr.shape) // 6, 9, 31))
    orb = cv2.ORB_create(nfeatures=n_features, edgeThreshold=patch, patchSize=patch,
                         fastThreshold=fast_threshold)
    kp_bgr, des_bgr = orb.detectAndCompute(gray_bgr, None)
    kp_src, des_src = orb.detectAndCompute(gray_src, None)
    n_kp = min(len(kp_bgr), len(kp_src))
    if des_bgr is None or des_src is None or n_kp < min_inliers:
        return AlignmentResult(reason=f'too few image features ({n_kp} keypoints; the plate needs '
                                      f'texture for alignment)')
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(des_bgr, des_src, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < ratio * p[1].distance]
    if len(good) < min_inliers:
        return AlignmentResult(matches=len(good), reason=f'too few feature matches ({len(good)})')
    pts_bgr = np.float32([kp_bgr[m.queryIdx].pt for m in good]).reshape(-1, 1, 2)
    pts_src = np.float32([kp_src[m.trainIdx].pt for m in good]).reshape(-1, 1, 2)
    homography, mask = cv2.findHomography(pts_bgr, pts_src, cv2.RANSAC, ransac_threshold)
    inliers = int(mask.sum()) if mask is not None else 0
    if homography is None or inliers < min_inliers:
        return AlignmentResult(matches=len(good), inliers=inliers,
                               reason=f'no consistent homography ({inliers} of {len(good)} matches agree)')
    return AlignmentResult(homography=homography, inliers=inliers, matches=len(good))


def warp_background(src, bgr, homography):
    """Warp the plate onto the source frame; pixels the plate does not cover come from src."""
    h, w = src.shape[:2]
    warped = cv2.warpPerspective(np.ascontiguousarray(bgr, dtype=np.float32), homography, (w, h),
                                 flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    # Warp a coverage mask the same way; bilinear interpolation makes it < 1 where border
    # (outside) pixels were mixed in, and those are replaced too.
    covered = cv2.warpPerspective(np.ones(bgr.shape[:2], np.float32), homography, (w, h),
                                  flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    outside = covered < 0.999
    warped[outside] = src[outside]
    return np.clip(warped, 0.0, 1.0)


def align_background(src, bgr, **options):
    """Align the plate `bgr` to the frame `src`.

    Returns (plate, AlignmentResult): the warped plate (src-sized) on success, else `bgr`
    unchanged with the reason in the result. `options` go to `estimate_homography`.
    """
    result = estimate_homography(src, bgr, **options)
    if not result.ok:
        return bgr, result
    return warp_background(src, bgr, result.homography), result
