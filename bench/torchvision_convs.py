#!/usr/bin/python3
"""Every distinct Conv2d layer of torchvision's classification models, as the sweep's model shapes.

Builds each model from its definition (random weights: only the layer shapes matter), runs one
image through it with a hook on every Conv2d, and writes each distinct layer once to
bench/torchvision_convs.csv, with the first model it was seen in:

    model,C,H,W,OC,KH,KW,stride_h,stride_w,pad_h,pad_w,dilation_h,dilation_w,groups

usage: /usr/bin/python3 bench/torchvision_convs.py      (Debian's python3 with python3-torchvision)

The CSV is committed, so bench/conv_sweep.py does not need torchvision.
"""
import csv
import os
import sys

import torch
import torchvision.models as models

# (constructor name, input side): one or two of each family torchvision ships, at 224x224.
MODELS = [
    ("alexnet", 224), ("vgg16", 224), ("googlenet", 224), ("resnet18", 224), ("resnet50", 224),
    ("resnext50_32x4d", 224), ("squeezenet1_0", 224), ("densenet121", 224), ("mobilenet_v2", 224),
    ("mobilenet_v3_large", 224), ("mobilenet_v3_small", 224), ("shufflenet_v2_x1_0", 224),
    ("efficientnet_b0", 224), ("regnet_y_400mf", 224), ("convnext_tiny", 224),
]


def layers_of(name, side):
    ctor = getattr(models, name)
    kwargs = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    model = ctor(**kwargs).eval()
    seen = []

    def hook(module, inputs, _output):
        _, c, h, w = inputs[0].shape
        pad = module.padding if isinstance(module.padding, tuple) else (None, None)
        seen.append((c, h, w, module.out_channels, *module.kernel_size, *module.stride, *pad,
                     *module.dilation, module.groups))

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, 3, side, side))
    return seen


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torchvision_convs.csv")
    rows, seen = [], set()
    for name, side in MODELS:
        layers = layers_of(name, side)
        new = [layer for layer in layers if layer not in seen]
        for layer in new:
            seen.add(layer)
            rows.append((name, *layer))
        sys.stderr.write(f"{name}: {len(layers)} conv layers, {len(new)} new\n")
    tmp = out + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "C", "H", "W", "OC", "KH", "KW", "stride_h", "stride_w", "pad_h", "pad_w",
                    "dilation_h", "dilation_w", "groups"])
        w.writerows(rows)
    os.replace(tmp, out)
    print(f"{len(rows)} distinct conv layers from {len(MODELS)} models -> {out}")


if __name__ == "__main__":
    main()
