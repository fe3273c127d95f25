"""Atrous Spatial Pyramid Pooling (DeepLabV3), as in the official BackgroundMattingV2 code."""
import paddle
import paddle.nn as nn

from .ops import broadcast_spatial
from .utils import spatial_size


class ASPPConv(nn.Sequential):
    """Dilated 3x3 conv -> BN -> ReLU; (B, Cin, H, W) -> (B, Cout, H, W)."""

    def __init__(self, in_channels, out_channels, dilation):
        super().__init__(
            nn.Conv2D(in_channels, out_channels, 3, padding=dilation, dilation=dilation,
                      bias_attr=False),
            nn.BatchNorm2D(out_channels),
            nn.ReLU())


class ASPPPooling(nn.Sequential):
    """Image-level pooling branch; (B, Cin, H, W) -> (B, Cout, H, W) (constant per image)."""

    def __init__(self, in_channels, out_channels):
        super().__init__(
            nn.AdaptiveAvgPool2D(1),
            nn.Conv2D(in_channels, out_channels, 1, bias_attr=False),
            nn.BatchNorm2D(out_channels),
            nn.ReLU())

    def forward(self, x):
        size = spatial_size(x)
        for layer in self:
            x = layer(x)
        return broadcast_spatial(x, size)  # bilinear resizing of a 1x1 map is repetition


class ASPP(nn.Layer):
    """ASPP with a 1x1 branch, three dilated branches and image pooling, then a 1x1 projection.

    Input:  x (B, in_channels, H, W)
    Output: (B, out_channels, H, W)
    """

    def __init__(self, in_channels, atrous_rates=(3, 6, 9), out_channels=256):
        super().__init__()
        rate1, rate2, rate3 = tuple(atrous_rates)
        self.convs = nn.LayerList([
            nn.Sequential(nn.Conv2D(in_channels, out_channels, 1, bias_attr=False),
                          nn.BatchNorm2D(out_channels),
                          nn.ReLU()),
            ASPPConv(in_channels, out_channels, rate1),
            ASPPConv(in_channels, out_channels, rate2),
            ASPPConv(in_channels, out_channels, rate3),
            ASPPPooling(in_channels, out_channels),
        ])
        self.project = nn.Sequential(
            nn.Conv2D(len(self.convs) * out_channels, out_channels, 1, bias_attr=False),
            nn.BatchNorm2D(out_channels),
            nn.ReLU(),
            nn.Dropout(0.1))

    def forward(self, x):
        return self.project(paddle.concat([conv(x) for conv in self.convs], axis=1))
