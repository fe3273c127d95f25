"""The BackgroundMattingV2 decoder: four upsample + skip-concat + conv stages."""
import paddle.nn as nn

from .ops import conv_parts, resize_bilinear
from .utils import spatial_size


class Decoder(nn.Layer):
    """Decodes the ASPP output with the encoder's skip features back to the input resolution.

    Args:
        channels: [c_aspp, c1, c2, c3, c_out], output channels of each stage (c_aspp is the input).
        feature_channels: channels of the skip features x3, x2, x1, x0.

    Input:  x4 (B, c_aspp, H/16, W/16), x3 (B, f0, H/8, W/8), x2 (B, f1, H/4, W/4),
            x1 (B, f2, H/2, W/2), x0 (B, f3, H, W)
    Output: (B, c_out, H, W), raw (no activation on the last conv).
    """

    def __init__(self, channels, feature_channels):
        super().__init__()
        self.conv1 = nn.Conv2D(feature_channels[0] + channels[0], channels[1], 3, padding=1, bias_attr=False)
        self.bn1 = nn.BatchNorm2D(channels[1])
        self.conv2 = nn.Conv2D(feature_channels[1] + channels[1], channels[2], 3, padding=1, bias_attr=False)
        self.bn2 = nn.BatchNorm2D(channels[2])
        self.conv3 = nn.Conv2D(feature_channels[2] + channels[2], channels[3], 3, padding=1, bias_attr=False)
        self.bn3 = nn.BatchNorm2D(channels[3])
        self.conv4 = nn.Conv2D(feature_channels[3] + channels[3], channels[4], 3, padding=1)
        self.relu = nn.ReLU()

    def _stage(self, x, skip, conv, bn=None):
        """conv (+ bn) of concat([upsampled x, skip]), computed without the concat."""
        # exact 2x when the sizes allow it (the usual case), any sizes otherwise
        x = resize_bilinear(x, spatial_size(skip), factor=2)
        return conv_parts([x, skip], conv, bn, padding=1)

    def forward(self, x4, x3, x2, x1, x0):
        x = self.relu(self._stage(x4, x3, self.conv1, self.bn1))
        x = self.relu(self._stage(x, x2, self.conv2, self.bn2))
        x = self.relu(self._stage(x, x1, self.conv3, self.bn3))
        return self._stage(x, x0, self.conv4)
