"""ResNet-50 / ResNet-101 encoder with 6-channel input and output stride 16 (dilated layer4).

Layer names follow torchvision's ResNet (`conv1`, `bn1`, `layer<i>.<j>.conv<k>`, `downsample`)
so that official BackgroundMattingV2 checkpoints map onto this model one to one.
"""
import paddle.nn as nn

_LAYERS = {'resnet50': [3, 4, 6, 3], 'resnet101': [3, 4, 23, 3]}


class Bottleneck(nn.Layer):
    """ResNet v1.5 bottleneck (stride on the 3x3 conv); (B, Cin, H, W) -> (B, 4*planes, H/s, W/s)."""
    expansion = 4

    def __init__(self, in_channels, planes, stride=1, dilation=1, downsample=None):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2D(in_channels, planes, 1, bias_attr=False)
        self.bn1 = nn.BatchNorm2D(planes)
        self.conv2 = nn.Conv2D(planes, planes, 3, stride, padding=dilation, dilation=dilation,
                               bias_attr=False)
        self.bn2 = nn.BatchNorm2D(planes)
        self.conv3 = nn.Conv2D(planes, out_channels, 1, bias_attr=False)
        self.bn3 = nn.BatchNorm2D(out_channels)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetEncoder(nn.Layer):
    """ResNet feature extractor as used by BackgroundMattingV2 (no avgpool / fc).

    layer4 replaces its stride by dilation 2 (torchvision's replace_stride_with_dilation
    [False, False, True]), so the deepest feature has output stride 16.

    Input:  x (B, in_channels, H, W)
    Output: (x4, x3, x2, x1, x0): (B, 2048, H/16, W/16), (B, 512, H/8, W/8), (B, 256, H/4, W/4),
            (B, 64, H/2, W/2) and the input itself (sizes rounded up for odd H, W).
    """

    def __init__(self, in_channels=6, variant='resnet101'):
        super().__init__()
        if variant not in _LAYERS:
            raise ValueError(f'variant must be one of {sorted(_LAYERS)}, got {variant!r}')
        self._in_planes = 64
        self._dilation = 1
        self.conv1 = nn.Conv2D(in_channels, 64, 7, 2, 3, bias_attr=False)
        self.bn1 = nn.BatchNorm2D(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2D(3, 2, 1)
        blocks = _LAYERS[variant]
        self.layer1 = self._make_layer(64, blocks[0])
        self.layer2 = self._make_layer(128, blocks[1], stride=2)
        self.layer3 = self._make_layer(256, blocks[2], stride=2)
        self.layer4 = self._make_layer(512, blocks[3], stride=2, dilate=True)

    def _make_layer(self, planes, blocks, stride=1, dilate=False):
        # Same rule as torchvision: with `dilate`, the stride becomes dilation; the first block
        # keeps the previous dilation, the following ones use the new one.
        previous_dilation = self._dilation
        if dilate:
            self._dilation *= stride
            stride = 1
        out_channels = planes * Bottleneck.expansion
        downsample = None
        if stride != 1 or self._in_planes != out_channels:
            downsample = nn.Sequential(
                nn.Conv2D(self._in_planes, out_channels, 1, stride, bias_attr=False),
                nn.BatchNorm2D(out_channels))
        layers = [Bottleneck(self._in_planes, planes, stride, previous_dilation, downsample)]
        self._in_planes = out_channels
        for _ in range(1, blocks):
            layers.append(Bottleneck(self._in_planes, planes, dilation=self._dilation))
        return nn.Sequential(*layers)

    def forward(self, x):
        x0 = x
        x = self.relu(self.bn1(self.conv1(x)))
        x1 = x
        x = self.layer1(self.maxpool(x))
        x2 = x
        x = self.layer2(x)
        x3 = x
        x = self.layer4(self.layer3(x))
        return x, x3, x2, x1, x0
