#!/usr/bin/python3
"""Four of torchvision's classification CNNs written as torchvision writes them - ResNet-18,
MobileNetV2, MobileNetV3-Large and ShuffleNetV2 x1.0 - in plain PyTorch code that runs on
tinytorch or on PyTorch: `models(tinytorch)` or `models(torch)` returns the classes, built from
that library's nn (Conv2d with groups, BatchNorm2d, ReLU/ReLU6/Hardswish/Hardsigmoid with
inplace=True, AdaptiveAvgPool2d, Sequential subclasses, in-place residual adds, chunk, view and
transpose for ShuffleNet's channel shuffle). A torch model's state_dict loads into the tinytorch
one unchanged.

tests/python/test_torchvision_style.py checks both give the same outputs; bench/eager_models.py
times them side by side.

usage: python3 examples/torchvision_models.py [--model resnet18] [--batch 1]
"""
import argparse


def _make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def models(torch):
    """The model classes (name -> class taking num_classes) over `torch`: tinytorch or torch."""
    nn, F = torch.nn, torch.nn.functional

    class BasicBlock(nn.Module):
        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x):
            identity = x
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            if self.downsample is not None:
                identity = self.downsample(x)
            out += identity
            return self.relu(out)

    class ResNet18(nn.Module):
        def __init__(self, num_classes=1000):
            super().__init__()
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.layer1 = self._make_layer(64, 2)
            self.layer2 = self._make_layer(128, 2, stride=2)
            self.layer3 = self._make_layer(256, 2, stride=2)
            self.layer4 = self._make_layer(512, 2, stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512, num_classes)

        def _make_layer(self, planes, blocks, stride=1):
            downsample = None
            if stride != 1 or self.inplanes != planes:
                downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                           nn.BatchNorm2d(planes))
            layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes
            for _ in range(1, blocks):
                layers.append(BasicBlock(self.inplanes, planes))
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            x = torch.flatten(self.avgpool(x), 1)
            return self.fc(x)

    class ConvBNActivation(nn.Sequential):
        def __init__(self, inp, oup, kernel_size=3, stride=1, groups=1, activation=None):
            padding = (kernel_size - 1) // 2
            layers = [nn.Conv2d(inp, oup, kernel_size, stride, padding, groups=groups, bias=False),
                      nn.BatchNorm2d(oup)]
            if activation is not None:
                layers.append(activation(inplace=True))
            super().__init__(*layers)

    class InvertedResidualV2(nn.Module):
        def __init__(self, inp, oup, stride, expand_ratio):
            super().__init__()
            hidden = int(round(inp * expand_ratio))
            self.use_res_connect = stride == 1 and inp == oup
            layers = []
            if expand_ratio != 1:
                layers.append(ConvBNActivation(inp, hidden, kernel_size=1, activation=nn.ReLU6))
            layers += [ConvBNActivation(hidden, hidden, stride=stride, groups=hidden, activation=nn.ReLU6),
                       nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            if self.use_res_connect:
                return x + self.conv(x)
            return self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self, num_classes=1000):
            super().__init__()
            settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                        [6, 320, 1, 1]]
            inp = 32
            features = [ConvBNActivation(3, inp, stride=2, activation=nn.ReLU6)]
            for t, c, n, s in settings:
                for i in range(n):
                    features.append(InvertedResidualV2(inp, c, s if i == 0 else 1, t))
                    inp = c
            features.append(ConvBNActivation(inp, 1280, kernel_size=1, activation=nn.ReLU6))
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

        def forward(self, x):
            x = self.features(x)
            x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
            x = torch.flatten(x, 1)
            return self.classifier(x)

    class SqueezeExcitation(nn.Module):
        def __init__(self, channels, squeeze):
            super().__init__()
            self.fc1 = nn.Conv2d(channels, squeeze, 1)
            self.relu = nn.ReLU(inplace=True)
            self.fc2 = nn.Conv2d(squeeze, channels, 1)
            self.gate = nn.Hardsigmoid(inplace=True)

        def forward(self, x):
            scale = F.adaptive_avg_pool2d(x, 1)
            scale = self.gate(self.fc2(self.relu(self.fc1(scale))))
            return scale * x

    class InvertedResidualV3(nn.Module):
        def __init__(self, inp, kernel, expanded, out, use_se, use_hs, stride):
            super().__init__()
            self.use_res_connect = stride == 1 and inp == out
            act = nn.Hardswish if use_hs else nn.ReLU
            layers = []
            if expanded != inp:
                layers.append(ConvBNActivation(inp, expanded, kernel_size=1, activation=act))
            layers.append(ConvBNActivation(expanded, expanded, kernel, stride, groups=expanded, activation=act))
            if use_se:
                layers.append(SqueezeExcitation(expanded, _make_divisible(expanded // 4)))
            layers.append(ConvBNActivation(expanded, out, kernel_size=1))
            self.block = nn.Sequential(*layers)

        def forward(self, x):
            result = self.block(x)
            if self.use_res_connect:
                result += x
            return result

    class MobileNetV3Large(nn.Module):
        def __init__(self, num_classes=1000):
            super().__init__()
            config = [(16, 3, 16, 16, False, False, 1), (16, 3, 64, 24, False, False, 2),
                      (24, 3, 72, 24, False, False, 1), (24, 5, 72, 40, True, False, 2),
                      (40, 5, 120, 40, True, False, 1), (40, 5, 120, 40, True, False, 1),
                      (40, 3, 240, 80, False, True, 2), (80, 3, 200, 80, False, True, 1),
                      (80, 3, 184, 80, False, True, 1), (80, 3, 184, 80, False, True, 1),
                      (80, 3, 480, 112, True, True, 1), (112, 3, 672, 112, True, True, 1),
                      (112, 5, 672, 160, True, True, 2), (160, 5, 960, 160, True, True, 1),
                      (160, 5, 960, 160, True, True, 1)]
            layers = [ConvBNActivation(3, 16, stride=2, activation=nn.Hardswish)]
            layers += [InvertedResidualV3(*c) for c in config]
            layers.append(ConvBNActivation(160, 960, kernel_size=1, activation=nn.Hardswish))
            self.features = nn.Sequential(*layers)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(nn.Linear(960, 1280), nn.Hardswish(inplace=True), nn.Dropout(0.2),
                                            nn.Linear(1280, num_classes))

        def forward(self, x):
            x = torch.flatten(self.avgpool(self.features(x)), 1)
            return self.classifier(x)

    def channel_shuffle(x, groups):
        batch, channels, height, width = x.size()
        x = x.view(batch, groups, channels // groups, height, width)
        x = torch.transpose(x, 1, 2).contiguous()
        return x.view(batch, -1, height, width)

    class ShuffleUnit(nn.Module):
        def __init__(self, inp, oup, stride):
            super().__init__()
            self.stride = stride
            branch = oup // 2
            if stride > 1:
                self.branch1 = nn.Sequential(
                    nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp),
                    nn.Conv2d(inp, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True))
            else:
                self.branch1 = nn.Sequential()
            self.branch2 = nn.Sequential(
                nn.Conv2d(inp if stride > 1 else branch, branch, 1, bias=False), nn.BatchNorm2d(branch),
                nn.ReLU(inplace=True),
                nn.Conv2d(branch, branch, 3, stride, 1, groups=branch, bias=False), nn.BatchNorm2d(branch),
                nn.Conv2d(branch, branch, 1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True))

        def forward(self, x):
            if self.stride == 1:
                x1, x2 = x.chunk(2, dim=1)
                out = torch.cat((x1, self.branch2(x2)), dim=1)
            else:
                out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
            return channel_shuffle(out, 2)

    class ShuffleNetV2(nn.Module):
        def __init__(self, num_classes=1000):
            super().__init__()
            widths = [24, 116, 232, 464, 1024]
            self.conv1 = nn.Sequential(nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU(inplace=True))
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            inp = 24
            for name, repeats, oup in zip(["stage2", "stage3", "stage4"], [4, 8, 4], widths[1:4]):
                units = [ShuffleUnit(inp, oup, 2)] + [ShuffleUnit(oup, oup, 1) for _ in range(repeats - 1)]
                setattr(self, name, nn.Sequential(*units))
                inp = oup
            self.conv5 = nn.Sequential(nn.Conv2d(inp, widths[-1], 1, bias=False), nn.BatchNorm2d(widths[-1]),
                                       nn.ReLU(inplace=True))
            self.fc = nn.Linear(widths[-1], num_classes)

        def forward(self, x):
            x = self.maxpool(self.conv1(x))
            x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
            return self.fc(x.mean([2, 3]))

    return {"resnet18": ResNet18, "mobilenet_v2": MobileNetV2, "mobilenet_v3_large": MobileNetV3Large,
            "shufflenet_v2": ShuffleNetV2}


def main():
    import numpy as np

    import tinytorch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet18", choices=sorted(models(tinytorch)))
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    model = models(tinytorch)[args.model]().eval()
    x = tinytorch.from_numpy(np.random.default_rng(0).standard_normal((args.batch, 3, 224, 224), np.float32))
    with tinytorch.no_grad():
        y = model(x)
    print(f"{args.model}: output {tuple(y.shape)}, top-5 of the first image {np.argsort(-y.numpy()[0])[:5].tolist()}")


if __name__ == "__main__":
    main()
