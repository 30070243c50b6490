#!/usr/bin/python3
"""Exports torchvision's classification CNNs to ONNX, for tinytorch's ONNX tests and benchmarks.

Each model gets random weights (torchvision's initialisation, seeded) and batch-norm statistics
set to random realistic values (running means near 0, variances near 1, scales and shifts
around 1 and 0), so that outputs are not trivial. Nothing is downloaded. Written per model:
NAME.onnx (a free batch dimension), NAME.input.npy (a seeded input batch), NAME.output.npy
(PyTorch's output for it, the oracle) and NAME.pt (the weights, a state_dict, from which
bench/compare_models.py rebuilds the model in PyTorch 2).

Runs with Debian's /usr/bin/python3 (python3-torch 1.13, python3-torchvision 0.14, python3-onnx):

    /usr/bin/python3 scripts/export_models.py OUT_DIR [--models resnet18,mobilenet_v2] [--opset 13]
                                              [--batch 2] [--size 224]
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torchvision.models as tv

MODELS = {
    "resnet18": lambda: tv.resnet18(),
    "resnet50": lambda: tv.resnet50(),
    "mobilenet_v2": lambda: tv.mobilenet_v2(),
    "mobilenet_v3_large": lambda: tv.mobilenet_v3_large(),
    "efficientnet_b0": lambda: tv.efficientnet_b0(),
    "shufflenet_v2_x1_0": lambda: tv.shufflenet_v2_x1_0(),
    "squeezenet1_1": lambda: tv.squeezenet1_1(),
    "densenet121": lambda: tv.densenet121(),
    "vgg11": lambda: tv.vgg11(),
    "googlenet": lambda: tv.googlenet(aux_logits=False, init_weights=True),
}


def randomize_batch_norm(model, gen):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                    m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


def export(name, out_dir, opset, batch, size, seed=0):
    torch.manual_seed(seed)
    model = MODELS[name]().eval()
    randomize_batch_norm(model, torch.Generator().manual_seed(seed + 1))
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((batch, 3, size, size), dtype=np.float32))
    with torch.no_grad():
        y = model(x)
    path = os.path.join(out_dir, name + ".onnx")
    torch.onnx.export(model, x, path, opset_version=opset, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, do_constant_folding=True)
    np.save(os.path.join(out_dir, name + ".input.npy"), x.numpy())
    np.save(os.path.join(out_dir, name + ".output.npy"), y.numpy())
    torch.save(model.state_dict(), os.path.join(out_dir, name + ".pt"))
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated, of: " + ", ".join(MODELS))
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    names = [m for m in args.models.split(",") if m]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        sys.exit(f"export_models: unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    os.makedirs(args.out_dir, exist_ok=True)
    torch.set_num_threads(2)
    start = time.time()
    for i, name in enumerate(names):
        export(name, args.out_dir, args.opset, args.batch, args.size)
        elapsed = time.time() - start
        eta = elapsed / (i + 1) * (len(names) - i - 1)
        print(f"[{i + 1}/{len(names)}] {name} exported, {elapsed:.0f} s, ETA {eta:.0f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
