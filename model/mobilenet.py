"""MobileNetV2 encoder with 6-channel input and output stride 16 (dilated last stages).

Layer names follow torchvision's MobileNetV2 (`features.<i>.conv.<j>...`) so that official
BackgroundMattingV2 checkpoints map onto this model one to one.
"""
import paddle.nn as nn

# (expand ratio t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper.
_INVERTED_RESIDUAL_SETTING = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


class ConvBNReLU(nn.Sequential):
    """Conv2D -> BatchNorm2D -> ReLU6; (B, Cin, H, W) -> (B, Cout, H/stride, W/stride)."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, groups=1, dilation=1):
        padding = (kernel_size - 1) // 2 * dilation
        super().__init__(
            nn.Conv2D(in_channels, out_channels, kernel_size, stride, padding,
                      dilation=dilation, groups=groups, bias_attr=False),
            nn.BatchNorm2D(out_channels),
            nn.ReLU6())


class InvertedResidual(nn.Layer):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection, residual if shapes allow.

    (B, Cin, H, W) -> (B, Cout, H/stride, W/stride).
    """

    def __init__(self, in_channels, out_channels, stride, expand_ratio, dilation=1):
        super().__init__()
        hidden = int(round(in_channels * expand_ratio))
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(in_channels, hidden, kernel_size=1))
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, groups=hidden, dilation=dilation),
            nn.Conv2D(hidden, out_channels, 1, bias_attr=False),
            nn.BatchNorm2D(out_channels),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2Encoder(nn.Layer):
    """MobileNetV2 feature extractor as used by BackgroundMattingV2.

    The last 1x1 conv of MobileNetV2 is removed; block 14 keeps stride 1 and blocks 15-17 use
    dilation 2, so the deepest feature has output stride 16.

    Input:  x (B, in_channels, H, W)
    Output: (x4, x3, x2, x1, x0): (B, 320, H/16, W/16), (B, 32, H/8, W/8), (B, 24, H/4, W/4),
            (B, 16, H/2, W/2) and the input itself (sizes rounded up for odd H, W).
    """

    def __init__(self, in_channels=6):
        super().__init__()
        features = [ConvBNReLU(in_channels, 32, stride=2)]
        channels = 32
        for t, c, n, s in _INVERTED_RESIDUAL_SETTING:
            for i in range(n):
                index = len(features)
                stride = s if i == 0 else 1
                # Output stride 16: block 14 (the 1/32 downsampling) keeps stride 1 and the
                # blocks after it dilate instead. Block 14 is not residual either way
                # (96 -> 160 channels), so changing its stride does not change its structure.
                if index == 14:
                    stride = 1
                dilation = 2 if index >= 15 else 1
                features.append(InvertedResidual(channels, c, stride, t, dilation))
                channels = c
        self.features = nn.Sequential(*features)

    def forward(self, x):
        x0 = x
        x = self.features[0](x)
        x = self.features[1](x)
        x1 = x
        x = self.features[2](x)
        x = self.features[3](x)
        x2 = x
        for i in range(4, 7):
            x = self.features[i](x)
        x3 = x
        for i in range(7, 18):
            x = self.features[i](x)
        return x, x3, x2, x1, x0
