#!/usr/bin/python3
"""AlexNet's training step in PyTorch: the baseline of bench/nets_bench's alexnet/cpu/width:1/batch:32.

The same net as nets/alexnet.cpp (BVLC Caffe AlexNet): conv1 96x11x11/4, LRN (size 5, alpha 1e-4, beta 0.75, k 1)
after relu1 and relu2 and before pooling, 3x3/2 max pools, conv2/4/5 with groups 2, fc6 4096, fc7 4096, dropout
0.5, fc8; here with 1 input channel and 2 classes at 227x227, batch 32, softmax cross-entropy, SGD with momentum
0.9 and weight decay 5e-4. One step = zero_grad, forward, loss, backward, optimizer step, the same work as
massmap's Solver::step().

Run with Debian's interpreter and package (tools/install-baselines.sh: python3-torch and OpenBLAS), on the same
thread count as ours; -s keeps a pip NumPy in ~/.local (NumPy 2, which Debian's torch 1.13 cannot use, with its own
OpenBLAS) out of the process:
  OMP_NUM_THREADS=2 /usr/bin/python3 -s bench/pytorch_alexnet.py --threads 2 --repetitions 5
The fully connected layers run on the BLAS behind libblas.so.3; the script prints which one it loaded and refuses
the reference netlib BLAS (3x slower on this step: no user runs PyTorch that way; --allow-reference-blas to measure
it anyway). Convolutions run on oneDNN (MKL-DNN) inside PyTorch, whatever the BLAS.
On a GPU (the lent GPU machine's PyTorch wheels), against nets_bench's alexnet/cuda/width:1/batch:32:
  python3 bench/pytorch_alexnet.py --device cuda --batch 32
with cuDNN as a competent user runs it for an FP32 comparison: cudnn.benchmark on (cuDNN picks its fastest
algorithm per layer), TF32 off for convolutions and matmuls (our kernels are strict FP32), every timed step
synchronised.
Prints images/s per repetition, then the median and the spread. --inference times the forward pass alone (eval mode,
no_grad, loss included), the baseline of nets_bench's alexnet/cpu/width:1/batch:32/inference.
"""
import argparse
import ctypes
import os
import statistics
import time

import torch
import torch.nn as nn


def alexnet(channels: int, classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 96, 11, stride=4), nn.ReLU(inplace=True),
        nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0), nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(inplace=True),
        nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0), nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, ceil_mode=True), nn.Flatten(),
        nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(4096, classes))


def init_caffe(net: nn.Module) -> None:
    """Caffe's reference fillers (gaussian 0.01, fc6/fc7 0.005, biases 0.1 on conv2/4/5 and fc6/fc7)."""
    layers = [m for m in net if isinstance(m, (nn.Conv2d, nn.Linear))]
    stds = [0.01, 0.01, 0.01, 0.01, 0.01, 0.005, 0.005, 0.01]
    biases = [0, 0.1, 0, 0.1, 0.1, 0.1, 0.1, 0]
    for layer, std, bias in zip(layers, stds, biases):
        nn.init.normal_(layer.weight, 0.0, std)
        nn.init.constant_(layer.bias, bias)


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p), ("dli_sname", ctypes.c_char_p),
                ("dli_saddr", ctypes.c_void_p)]


def loaded_blas() -> tuple:
    """(description, is_reference): the library whose sgemm_ PyTorch's calls bind to, after a matrix product."""
    torch.ones(64, 64) @ torch.ones(64, 64)
    with open("/proc/self/maps") as maps:
        torch_libs = sorted({line.split()[-1] for line in maps if "libtorch_cpu" in line})
    if not torch_libs:
        return "libtorch_cpu not mapped", False
    # dlsym on libtorch_cpu's handle searches it and its dependencies in load order, as its own calls bind.
    libtorch = ctypes.CDLL(torch_libs[0])
    try:
        address = ctypes.cast(libtorch.sgemm_, ctypes.c_void_p)
    except AttributeError:
        return "no sgemm_ reachable from libtorch_cpu", False
    info = _DlInfo()
    if not ctypes.CDLL(None).dladdr(address, ctypes.byref(info)):
        return "sgemm_ from an unknown library", False
    path = os.path.realpath(info.dli_fname.decode())
    text = f"sgemm_ from {path}"
    if "openblas" not in path:
        return text, os.path.basename(path).startswith("libblas.so")
    try:
        lib = ctypes.CDLL(path)
        lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_get_corename.restype = ctypes.c_char_p
        text += (f" ({lib.openblas_get_config().decode()}, core {lib.openblas_get_corename().decode()}, "
                 f"{lib.openblas_get_num_threads()} threads)")
    except (OSError, AttributeError):
        pass
    return text, False


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--input", type=int, default=227)
    p.add_argument("--steps", type=int, default=5, help="timed steps per repetition")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repetitions", type=int, default=5)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--inference", action="store_true",
                   help="time the forward pass alone (eval mode, no_grad) instead of a training step")
    p.add_argument("--allow-reference-blas", action="store_true",
                   help="measure even on the reference netlib BLAS (not a baseline to compare with)")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    if a.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("pytorch_alexnet: --device cuda, but PyTorch sees no CUDA GPU")
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    device = torch.device(a.device)
    net = alexnet(a.channels, a.classes)
    init_caffe(net)
    net.to(device)
    net.train()  # dropout on, as in a training step
    # lr 1e-5 as in nets_bench: the weights stay sane over the timed steps (the rate does not change the work)
    opt = torch.optim.SGD(net.parameters(), lr=1e-5, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    x = (torch.rand(a.batch, a.channels, a.input, a.input) * 2 - 1).to(device)
    y = (torch.arange(a.batch) % a.classes).to(device)

    def sync() -> None:
        if a.device == "cuda":
            torch.cuda.synchronize()

    def step() -> float:
        if a.inference:
            with torch.no_grad():
                return loss_fn(net(x), y).item()
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    if a.inference:
        net.eval()  # dropout off

    where = f"threads {torch.get_num_threads()}"
    if a.device == "cuda":
        where = (f"{torch.cuda.get_device_name()}, cuDNN {torch.backends.cudnn.version()}, cudnn.benchmark on, "
                 f"TF32 off")
    print(f"torch {torch.__version__}, {a.device} ({where}), batch {a.batch}, "
          f"{a.channels} channel(s), {a.classes} classes, input {a.input}")
    blas, reference = loaded_blas()
    print(f"blas: {blas}")
    print(f"convolutions: mkldnn (oneDNN) {'on' if torch.backends.mkldnn.is_available() else 'off'}")
    if reference and a.device == "cpu" and not a.allow_reference_blas:
        raise SystemExit("pytorch_alexnet: PyTorch loaded the reference netlib BLAS, about 3x slower on this step "
                         "than OpenBLAS; install OpenBLAS (tools/install-baselines.sh) or pass "
                         "--allow-reference-blas")
    for _ in range(a.warmup):
        step()
    sync()
    rates = []
    for r in range(a.repetitions):
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(a.steps):
            step()
        sync()
        seconds = (time.perf_counter() - start) / a.steps
        cpu = (time.process_time() - cpu_start) / a.steps
        rates.append(a.batch / seconds)
        print(f"repetition {r}: {seconds * 1e3:.1f} ms/step, {rates[-1]:.2f} images/s, "
              f"process CPU {cpu:.2f} s/step", flush=True)
    print(f"pytorch alexnet{' inference' if a.inference else ''}: median {statistics.median(rates):.2f} images/s "
          f"(min {min(rates):.2f}, max {max(rates):.2f}, {a.repetitions} x {a.steps} steps)")


if __name__ == "__main__":
    main()
