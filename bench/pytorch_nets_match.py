#!/usr/bin/python3
"""Checks that bench/pytorch_nets.py builds the same nets as massmap: for each net, `massmap nets show` and the
PyTorch net run once at batch 1 must list the same convolution, linear, pooling, LRN and batch-norm layers in the same
order, each with the same output shape, parameter count and multiply-adds (counted as the engine's cost rules count
them), and the same parameter total. Exit 1 on the first difference, with both sides' rows.
  /usr/bin/python3 -s bench/pytorch_nets_match.py --massmap build/bin/massmap            # every net
  /usr/bin/python3 -s bench/pytorch_nets_match.py --massmap build/bin/massmap vgg16      # one
Each case is a net name, with ":aux" for GoogLeNet's auxiliary heads (googlenet:aux).
"""
import argparse
import os
import re
import subprocess
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pytorch_nets  # noqa: E402

COUNTED_OPS = ("conv2d", "linear", "pool", "lrn", "batch_norm")
ROW = re.compile(r"^(\S+)\s+(" + "|".join(COUNTED_OPS) + r")\s+\(([0-9, ]*)\)\s+([0-9,]+)\s+([0-9,]+)\s")
TOTAL = re.compile(r"^total\s+([0-9,]+)\s+([0-9,]+)\s")


def number(text: str) -> int:
    return int(text.replace(",", ""))


def massmap_layers(binary: str, net: str, aux: bool, channels: int, classes: int):
    """([(layer, op, output shape, parameters, multiply-adds)], parameter total) from `massmap nets show`."""
    command = [binary, "nets", "show", net, "--channels", str(channels), "--classes", str(classes), "--batch", "1"]
    text = subprocess.run(command + (["--aux"] if aux else []), check=True, capture_output=True, text=True).stdout
    rows, total = [], None
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            shape = tuple(number(d) for d in m.group(3).split(","))
            rows.append((m.group(1), m.group(2), shape, number(m.group(4)), number(m.group(5))))
        m = TOTAL.match(line)
        if m:
            total = number(m.group(1))
    if total is None:
        raise SystemExit(f"pytorch_nets_match: no total line in the output of {' '.join(command)}")
    return rows, total


def pytorch_layers(net: str, aux: bool, channels: int, classes: int):
    """The same rows (module kind for the name) from forward hooks on one image, the parameter total, and the error
    that stopped the forward pass (a net whose shapes differ from ours may not fit its own input)."""
    model = pytorch_nets.build(net, channels, classes, aux).eval()
    rows = []

    def hook(module, inputs, output):
        params = sum(p.numel() for p in module.parameters(recurse=False))
        if isinstance(module, nn.Conv2d):
            op, macs = "conv2d", output.numel() * module.weight[0].numel()
        elif isinstance(module, nn.Linear):
            op, macs = "linear", output.numel() * module.in_features
        elif isinstance(module, nn.BatchNorm2d):  # massmap's running statistics are parameters (never learnt)
            op, macs = "batch_norm", 2 * output.numel()
            params += module.running_mean.numel() + module.running_var.numel()
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            op, macs = "pool", output.numel() * module.kernel_size ** 2
        else:
            op, macs = "lrn", inputs[0].numel() * (module.size + 2)
        rows.append((type(module).__name__, op, tuple(output.shape), params, macs))

    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.MaxPool2d, nn.AvgPool2d, nn.LocalResponseNorm, nn.BatchNorm2d)):
            module.register_forward_hook(hook)
    size = pytorch_nets.NOMINAL_INPUT[net]
    error = None
    with torch.no_grad():
        try:
            model(torch.zeros(1, channels, size, size))
        except RuntimeError as e:
            error = str(e)
    running = sum(m.running_mean.numel() + m.running_var.numel() for m in model.modules()
                  if isinstance(m, nn.BatchNorm2d))
    return rows, sum(p.numel() for p in model.parameters()) + running, error


def check(binary: str, case: str, channels: int, classes: int) -> bool:
    net, _, option = case.partition(":")
    aux = option == "aux"
    ours, our_total = massmap_layers(binary, net, aux, channels, classes)
    theirs, their_total, error = pytorch_layers(net, aux, channels, classes)
    for i in range(max(len(ours), len(theirs))):
        a = ours[i] if i < len(ours) else None
        b = theirs[i] if i < len(theirs) else None
        if a is None or b is None or a[1:] != b[1:]:
            print(f"{case}: layer {i} differs\n  massmap: {a}\n  pytorch: {b}")
            if error:
                print(f"  pytorch's forward pass then failed: {error}")
            return False
    macs = sum(row[4] for row in ours)
    verdict = "match" if our_total == their_total else "DIFFER"
    print(f"{case}: {len(ours)} layers match (output shape, parameters, multiply-adds; {macs:,} multiply-adds per "
          f"image); parameters massmap {our_total:,}, pytorch {their_total:,}: {verdict}")
    return our_total == their_total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cases", nargs="*",
                   default=["alexnet", "vgg16", "googlenet", "googlenet:aux", "mapnet_bn", "mapnet_bn_fine"])
    p.add_argument("--massmap", default="build/bin/massmap", help="the massmap program")
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--classes", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    ok = [check(a.massmap, case, a.channels, a.classes) for case in a.cases]
    sys.exit(0 if all(ok) else 1)


if __name__ == "__main__":
    main()
