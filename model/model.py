"""MattingBase and MattingRefine, the two BackgroundMattingV2 networks."""
import math

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .aspp import ASPP
from .decoder import Decoder
from .mobilenet import MobileNetV2Encoder
from .ops import downsample_bilinear
from .options import BACKBONES, REFINE_DEFAULTS
from .refiner import Refiner
from .resnet import ResNetEncoder


def check_inputs(src, bgr, multiple=1):
    """Raise ValueError unless src and bgr are (B, 3, H, W) of equal shape, H and W % multiple == 0."""
    if len(src.shape) != 4 or src.shape[1] != 3:
        raise ValueError(f'src must have shape (B, 3, H, W), got {list(src.shape)}')
    if list(src.shape) != list(bgr.shape):
        raise ValueError(f'src and bgr must have the same shape, got src {list(src.shape)} and '
                         f'bgr {list(bgr.shape)}; resize the background to the source size')
    H, W = src.shape[2], src.shape[3]
    if H % multiple or W % multiple:
        raise ValueError(f'src and bgr height and width must be divisible by {multiple}, got '
                         f'{H}x{W}; pad them (predict.py does this for you)')


class Base(nn.Layer):
    """Encoder (backbone) + ASPP + decoder.

    Input:  x (B, in_channels, H, W)
    Output: (B, out_channels, H, W)
    """

    def __init__(self, backbone, in_channels, out_channels):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f'backbone must be one of {BACKBONES}, got {backbone!r}')
        self.backbone_name = backbone
        if backbone in ('resnet50', 'resnet101'):
            self.backbone = ResNetEncoder(in_channels, variant=backbone)
            self.aspp = ASPP(2048, [3, 6, 9])
            self.decoder = Decoder([256, 128, 64, 48, out_channels], [512, 256, 64, in_channels])
        else:
            self.backbone = MobileNetV2Encoder(in_channels)
            self.aspp = ASPP(320, [3, 6, 9])
            self.decoder = Decoder([256, 128, 64, 48, out_channels], [32, 24, 16, in_channels])

    def forward(self, x):
        x, *shortcuts = self.backbone(x)
        x = self.aspp(x)
        return self.decoder(x, *shortcuts)


class MattingBase(Base):
    """The base network: predicts the matte at the input resolution.

    Inputs:  src, bgr (B, 3, H, W) in [0, 1].
    Outputs: pha (B, 1, H, W) in [0, 1], fgr (B, 3, H, W) in [0, 1], err (B, 1, H, W) in [0, 1],
             hid (B, 32, H, W) >= 0.
    """

    def __init__(self, backbone):
        super().__init__(backbone, in_channels=6, out_channels=1 + 3 + 1 + 32)

    def forward(self, src, bgr):
        if paddle.in_dynamic_mode():
            check_inputs(src, bgr)
        x = super().forward(paddle.concat([src, bgr], axis=1))
        pha = paddle.clip(x[:, 0:1], 0.0, 1.0)
        fgr = paddle.clip(x[:, 1:4] + src, 0.0, 1.0)
        err = paddle.clip(x[:, 4:5], 0.0, 1.0)
        hid = F.relu(x[:, 5:])
        return pha, fgr, err, hid


class MattingRefine(MattingBase):
    """The full network: the base network on a downsampled image, then the refiner.

    Args:
        backbone: one of BACKBONES.
        backbone_scale, refine_mode, refine_sample_pixels, refine_threshold, refine_kernel_size,
        refine_prevent_oversampling: see `model.options.RefineOptions` (defaults there) and
        `Refiner`.

    Inputs:  src, bgr (B, 3, H, W) in [0, 1], H and W divisible by 4.
    Outputs: pha (B, 1, H, W), fgr (B, 3, H, W), pha_sm (B, 1, h, w), fgr_sm (B, 3, h, w),
             err_sm (B, 1, h, w), ref_sm (B, 1, H/4, W/4); h, w = floor(H * backbone_scale),
             floor(W * backbone_scale). All in [0, 1]; ref_sm is 1 where a patch was refined.
    """

    def __init__(self, backbone, backbone_scale=REFINE_DEFAULTS.backbone_scale,
                 refine_mode=REFINE_DEFAULTS.refine_mode,
                 refine_sample_pixels=REFINE_DEFAULTS.refine_sample_pixels,
                 refine_threshold=REFINE_DEFAULTS.refine_threshold,
                 refine_kernel_size=REFINE_DEFAULTS.refine_kernel_size,
                 refine_prevent_oversampling=REFINE_DEFAULTS.refine_prevent_oversampling):
        if not 0 < backbone_scale <= 1 / 2:
            raise ValueError(f'backbone_scale must be in (0, 1/2], got {backbone_scale}')
        super().__init__(backbone)
        self.backbone_scale = backbone_scale
        self.refiner = Refiner(refine_mode, refine_sample_pixels, refine_threshold,
                               refine_kernel_size, refine_prevent_oversampling,
                               backbone_scale=backbone_scale)
        # Integer reduction 1 / backbone_scale if there is one: traced graphs then take an exact
        # fast downsampling path when the input size allows it (see model.ops).
        reduction = 1 / backbone_scale
        self._reduction = int(round(reduction)) if abs(reduction - round(reduction)) < 1e-6 else 0

    def forward(self, src, bgr):
        if paddle.in_dynamic_mode():
            check_inputs(src, bgr, multiple=4)
        pha_sm, fgr_sm, err_sm, hid_sm, src_sm = self.coarse(src, bgr)
        pha, fgr, ref_sm = self.refiner(src, bgr, pha_sm, fgr_sm, err_sm, hid_sm)
        pha = paddle.clip(pha, 0.0, 1.0)
        fgr = paddle.clip(fgr + src, 0.0, 1.0)
        fgr_sm = paddle.clip(src_sm + fgr_sm, 0.0, 1.0)
        return pha, fgr, pha_sm, fgr_sm, err_sm, ref_sm

    def coarse(self, src, bgr):
        """The base network on the downsampled inputs: what the refiner starts from.

        Inputs: src, bgr (B, 3, H, W). Outputs: pha_sm (B, 1, h, w) in [0, 1], fgr_sm (B, 3, h, w)
        foreground residual (not clamped), err_sm (B, 1, h, w), hid_sm (B, 32, h, w), and
        src_sm (B, 3, h, w) the downsampled src.
        """
        # As torch's interpolate(scale_factor, recompute_scale_factor=True): floor(size * scale).
        if paddle.in_dynamic_mode():
            H, W = src.shape[2], src.shape[3]
            size_sm = [int(math.floor(H * self.backbone_scale)), int(math.floor(W * self.backbone_scale))]
        else:
            # float -> int casts truncate, which is floor for these positive sizes
            hw = (paddle.shape(src)[2:4].astype('float64') * self.backbone_scale).astype('int32')
            size_sm = [hw[0], hw[1]]
        src_sm = downsample_bilinear(src, size_sm, self._reduction)
        bgr_sm = downsample_bilinear(bgr, size_sm, self._reduction)

        x = Base.forward(self, paddle.concat([src_sm, bgr_sm], axis=1))
        pha_sm = paddle.clip(x[:, 0:1], 0.0, 1.0)
        fgr_sm = x[:, 1:4]
        err_sm = paddle.clip(x[:, 4:5], 0.0, 1.0)
        hid_sm = F.relu(x[:, 5:])
        return pha_sm, fgr_sm, err_sm, hid_sm, src_sm
