#!/usr/bin/python3
"""A training step of AlexNet, VGG-16, GoogLeNet, mapnet_bn or mapnet_bn_fine in PyTorch: the baseline of
bench/nets_bench's <net>/cpu/width:1/batch:32 rows (the mapnets: batch:64, the demo's) and their /inference rows.

The same nets as nets/alexnet.cpp, nets/vgg16.cpp and nets/googlenet.cpp at width 1, layer for layer (checked by
bench/pytorch_nets_match.py against `massmap nets show`: every layer's output shape, parameters and multiply-adds):
  alexnet    BVLC Caffe AlexNet, 227 input: conv1 96x11x11/4, LRN (size 5, alpha 1e-4, beta 0.75, k 1) after relu1
             and relu2 and before pooling, 3x3/2 max pools, groups 2 on conv2/4/5, fc6 4096, fc7 4096, dropout 0.5
  vgg16      configuration D, 224 input: 13 convolutions 3x3 pad 1 with ReLU, 2x2/2 max pools, fc6 and fc7 4096,
             dropout 0.5
  googlenet  BVLC Caffe GoogLeNet, 224 input: stem with LRN after pool1 and after conv2/3x3, nine inception modules,
             7x7 average pool, dropout 0.4; --aux adds the two auxiliary heads (5x5/3 average pool, 1x1 conv 128,
             fc 1024, dropout 0.7, classifier; loss weight 0.3), as `massmap ... --aux`
  mapnet_bn  47 input: six unpadded 3x3 convolutions without bias, each batch-normalised, 3x3/2 max pools after
             the second and fourth, fc 256, fc 256, dropout 0.5 (the smallnet preset's decay, 5e-4)
  mapnet_bn_fine  the demo's net, 93 input: mapnet_bn behind a stem of a 3x3 convolution (16 filters) and a 3x3
             stride-2 convolution (32) in place of the first, each batch-normalised
Pools round up (Caffe's ceil mode). 1 input channel and 2 classes by default, softmax cross-entropy, the net's
solver preset (nets/presets.cpp): SGD with momentum 0.9, weight decay 5e-4 (GoogLeNet 2e-4), biases at twice the
learning rate and without decay; the learning rate is 1e-5 as in nets_bench (it does not change the work). The
fillers are the builders' (Caffe's gaussian, msra, xavier). One step = zero_grad, forward, loss, backward,
optimizer step, the same work as massmap's Solver::step().

Run with Debian's interpreter and package (tools/install-baselines.sh: python3-torch and OpenBLAS), on the same
thread count as ours; -s keeps a pip NumPy in ~/.local (NumPy 2, which Debian's torch 1.13 cannot use, with its own
OpenBLAS) out of the process:
  OMP_NUM_THREADS=2 /usr/bin/python3 -s bench/pytorch_nets.py --net vgg16 --threads 2 --repetitions 3 --steps 1
The fully connected layers run on the BLAS behind libblas.so.3; the script prints which one it loaded and refuses
the reference netlib BLAS (3x slower on AlexNet's step: no user runs PyTorch that way; --allow-reference-blas to
measure it anyway). Convolutions run on oneDNN (MKL-DNN) inside PyTorch, whatever the BLAS.
On a GPU (PyTorch's pip wheels there), against nets_bench's <net>/cuda/width:1/batch:32:
  python3 bench/pytorch_nets.py --net alexnet --device cuda --batch 32
with cuDNN as a competent user runs it for an FP32 comparison: cudnn.benchmark on (cuDNN picks its fastest
algorithm per layer), TF32 off for convolutions and matmuls (our kernels are strict FP32), every timed step
synchronised.
Prints images/s per repetition, then the median and the spread. --inference times the forward pass alone (eval mode,
no_grad, loss included), the baseline of nets_bench's <net>/cpu/width:1/batch:32/inference.
"""
import argparse
import ctypes
import math
import os
import statistics
import time

import torch
import torch.nn as nn

NOMINAL_INPUT = {"alexnet": 227, "vgg16": 224, "googlenet": 224, "mapnet_bn": 47, "mapnet_bn_fine": 93}
WEIGHT_DECAY = {"alexnet": 5e-4, "vgg16": 5e-4, "googlenet": 2e-4, "mapnet_bn": 5e-4, "mapnet_bn_fine": 5e-4}


def fan_in(weight: torch.Tensor) -> int:
    return weight[0].numel()


def fill(layer: nn.Module, kind: str, bias: float = 0.0, std: float = 0.01) -> nn.Module:
    """Caffe's fillers as the builders use them: gaussian (std), msra (gaussian, std sqrt(2 / fan_in)), xavier
    (uniform +-sqrt(3 / fan_in)); the bias a constant."""
    with torch.no_grad():
        if kind == "gaussian":
            layer.weight.normal_(0.0, std)
        elif kind == "msra":
            layer.weight.normal_(0.0, math.sqrt(2.0 / fan_in(layer.weight)))
        else:
            scale = math.sqrt(3.0 / fan_in(layer.weight))
            layer.weight.uniform_(-scale, scale)
        if layer.bias is not None:
            layer.bias.fill_(bias)
    return layer


def lrn() -> nn.Module:
    return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)


def alexnet(channels: int, classes: int) -> nn.Module:
    def conv(cin, cout, kernel, stride=1, pad=0, groups=1, bias=0.0):
        return fill(nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups), "gaussian", bias)

    return nn.Sequential(
        conv(channels, 96, 11, stride=4), nn.ReLU(inplace=True), lrn(), nn.MaxPool2d(3, 2, ceil_mode=True),
        conv(96, 256, 5, pad=2, groups=2, bias=0.1), nn.ReLU(inplace=True), lrn(), nn.MaxPool2d(3, 2, ceil_mode=True),
        conv(256, 384, 3, pad=1), nn.ReLU(inplace=True),
        conv(384, 384, 3, pad=1, groups=2, bias=0.1), nn.ReLU(inplace=True),
        conv(384, 256, 3, pad=1, groups=2, bias=0.1), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, ceil_mode=True), nn.Flatten(),
        fill(nn.Linear(256 * 6 * 6, 4096), "gaussian", 0.1, std=0.005), nn.ReLU(inplace=True), nn.Dropout(0.5),
        fill(nn.Linear(4096, 4096), "gaussian", 0.1, std=0.005), nn.ReLU(inplace=True), nn.Dropout(0.5),
        fill(nn.Linear(4096, classes), "gaussian"))


def vgg16(channels: int, classes: int) -> nn.Module:
    layers, cin = [], channels
    for convs, cout in [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]:
        for _ in range(convs):
            layers += [fill(nn.Conv2d(cin, cout, 3, padding=1), "msra"), nn.ReLU(inplace=True)]
            cin = cout
        layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
    return nn.Sequential(
        *layers, nn.Flatten(),
        fill(nn.Linear(512 * 7 * 7, 4096), "msra"), nn.ReLU(inplace=True), nn.Dropout(0.5),
        fill(nn.Linear(4096, 4096), "msra"), nn.ReLU(inplace=True), nn.Dropout(0.5),
        fill(nn.Linear(4096, classes), "gaussian"))


def conv_relu(cin: int, cout: int, kernel: int, stride: int = 1, pad: int = 0) -> nn.Module:
    """GoogLeNet's convolution (xavier, bias 0.2) and its ReLU."""
    return nn.Sequential(fill(nn.Conv2d(cin, cout, kernel, stride, pad), "xavier", 0.2), nn.ReLU(inplace=True))


class Inception(nn.Module):
    """Four branches concatenated: 1x1; 1x1 reduce -> 3x3; 1x1 reduce -> 5x5; 3x3/1 max pool -> 1x1 projection.
    The branches run in the builder's order, so forward hooks see the layers in `nets show`'s order."""

    def __init__(self, cin, c1x1, c3x3_reduce, c3x3, c5x5_reduce, c5x5, pool_proj):
        super().__init__()
        self.branches = nn.ModuleList([
            conv_relu(cin, c1x1, 1),
            nn.Sequential(conv_relu(cin, c3x3_reduce, 1), conv_relu(c3x3_reduce, c3x3, 3, pad=1)),
            nn.Sequential(conv_relu(cin, c5x5_reduce, 1), conv_relu(c5x5_reduce, c5x5, 5, pad=2)),
            nn.Sequential(nn.MaxPool2d(3, 1, padding=1, ceil_mode=True), conv_relu(cin, pool_proj, 1))])

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.branches], 1)


def aux_head(cin: int, classes: int) -> nn.Module:
    return nn.Sequential(
        nn.AvgPool2d(5, 3, ceil_mode=True), conv_relu(cin, 128, 1), nn.Flatten(),
        fill(nn.Linear(128 * 4 * 4, 1024), "xavier", 0.2), nn.ReLU(inplace=True), nn.Dropout(0.7),
        fill(nn.Linear(1024, classes), "xavier"))


class GoogLeNet(nn.Module):
    # name, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection (BVLC's table)
    TABLE = [("3a", 64, 96, 128, 16, 32, 32), ("3b", 128, 128, 192, 32, 96, 64), ("4a", 192, 96, 208, 16, 48, 64),
             ("4b", 160, 112, 224, 24, 64, 64), ("4c", 128, 128, 256, 24, 64, 64), ("4d", 112, 144, 288, 32, 64, 64),
             ("4e", 256, 160, 320, 32, 128, 128), ("5a", 256, 160, 320, 32, 128, 128),
             ("5b", 384, 192, 384, 48, 128, 128)]
    AUX_AFTER = {"4a": "loss1", "4d": "loss2"}
    AUX_WEIGHT = 0.3

    def __init__(self, channels: int, classes: int, aux: bool):
        super().__init__()
        self.stem = nn.Sequential(
            conv_relu(channels, 64, 7, stride=2, pad=3), nn.MaxPool2d(3, 2, ceil_mode=True), lrn(),
            conv_relu(64, 64, 1), conv_relu(64, 192, 3, pad=1), lrn(), nn.MaxPool2d(3, 2, ceil_mode=True))
        self.stages, self.aux = nn.ModuleDict(), nn.ModuleDict()
        cin = 192
        for name, *table in self.TABLE:
            module = Inception(cin, *table)
            if name in ("4a", "5a"):  # pool3 and pool4 come first
                module = nn.Sequential(nn.MaxPool2d(3, 2, ceil_mode=True), module)
            self.stages[name] = module
            cin = sum(table[i] for i in (0, 2, 4, 5))  # the concatenation: 1x1, 3x3, 5x5, pool projection
            if aux and name in self.AUX_AFTER:
                self.aux[self.AUX_AFTER[name]] = aux_head(cin, classes)
        self.head = nn.Sequential(nn.AvgPool2d(7, 1, ceil_mode=True), nn.Dropout(0.4), nn.Flatten(),
                                  fill(nn.Linear(cin, classes), "xavier"))

    def forward(self, x):
        """[(logits, loss weight)]: the classifier's, then each auxiliary head's."""
        outputs = []
        x = self.stem(x)
        for name, stage in self.stages.items():
            x = stage(x)
            if self.AUX_AFTER.get(name) in self.aux:
                outputs.append((self.aux[self.AUX_AFTER[name]](x), self.AUX_WEIGHT))
        return [(self.head(x), 1.0)] + outputs


def mapnet_bn(channels: int, classes: int, fine: bool = False) -> nn.Module:
    """Per stage two unpadded 3x3 convolutions without bias (32, 64, 128 filters), each batch-normalised (momentum
    0.1, eps 1e-5) and ReLU'd, 3x3/2 max pools between the stages, fc 256, 256 with dropout 0.5, classifier.
    fine: the first convolution becomes 3x3 (16 filters) then 3x3 stride 2 (32), both batch-normalised."""
    def conv_bn_relu(cin, cout, stride=1):
        return [fill(nn.Conv2d(cin, cout, 3, stride=stride, bias=False), "msra"), nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True)]

    layers, cin = [], channels
    if fine:
        layers += conv_bn_relu(channels, 16)
        cin = 16
    for stage, cout in enumerate((32, 64, 128)):
        if stage:
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
        for layer in range(2):
            layers += conv_bn_relu(cin, cout, 2 if fine and stage == 0 and layer == 0 else 1)
            cin = cout
    layers += [nn.Flatten(), fill(nn.Linear(128 * 4 * 4, 256), "msra"), nn.ReLU(inplace=True), nn.Dropout(0.5),
               fill(nn.Linear(256, 256), "msra"), nn.ReLU(inplace=True), nn.Dropout(0.5),
               fill(nn.Linear(256, classes), "msra")]
    return nn.Sequential(*layers)


def build(net: str, channels: int, classes: int, aux: bool = False) -> nn.Module:
    if aux and net != "googlenet":
        raise SystemExit(f"pytorch_nets: --aux is for googlenet, not {net}")
    if net == "alexnet":
        return alexnet(channels, classes)
    if net == "vgg16":
        return vgg16(channels, classes)
    if net in ("mapnet_bn", "mapnet_bn_fine"):
        return mapnet_bn(channels, classes, fine=net == "mapnet_bn_fine")
    return GoogLeNet(channels, classes, aux)


def weighted_logits(outputs) -> list:
    return outputs if isinstance(outputs, list) else [(outputs, 1.0)]


def solver(net: nn.Module, name: str, lr: float) -> torch.optim.Optimizer:
    """The preset's SGD with Caffe's multipliers: weights lr and decay, biases 2 x lr and no decay."""
    weights = [p for n, p in net.named_parameters() if not n.endswith("bias")]
    biases = [p for n, p in net.named_parameters() if n.endswith("bias")]
    return torch.optim.SGD([{"params": weights}, {"params": biases, "lr": 2 * lr, "weight_decay": 0.0}], lr=lr,
                           momentum=0.9, weight_decay=WEIGHT_DECAY[name])


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
    p.add_argument("--net", choices=sorted(NOMINAL_INPUT), default="alexnet")
    p.add_argument("--aux", action="store_true", help="googlenet's auxiliary heads (nets_bench's rows have none)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--input", type=int, default=0, help="input side (default: the net's nominal 227 or 224)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per repetition")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repetitions", type=int, default=5)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--inference", action="store_true",
                   help="time the forward pass alone (eval mode, no_grad) instead of a training step")
    p.add_argument("--bfloat16", action="store_true",
                   help="PyTorch's CPU mixed precision (torch.autocast('cpu', torch.bfloat16)): convolutions and "
                        "matmuls on bfloat16 operands, oneDNN on AMX where the CPU has it; the weights and the "
                        "optimizer stay float32 (massmap's --precision bfloat16 rounds the convolutions alone)")
    p.add_argument("--allow-reference-blas", action="store_true",
                   help="measure even on the reference netlib BLAS (not a baseline to compare with)")
    a = p.parse_args()
    size = a.input or NOMINAL_INPUT[a.net]

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    if a.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("pytorch_nets: --device cuda, but PyTorch sees no CUDA GPU")
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    device = torch.device(a.device)
    net = build(a.net, a.channels, a.classes, a.aux).to(device)
    net.train()  # dropout on, as in a training step
    opt = solver(net, a.net, 1e-5)
    loss_fn = nn.CrossEntropyLoss()
    x = (torch.rand(a.batch, a.channels, size, size) * 2 - 1).to(device)
    y = (torch.arange(a.batch) % a.classes).to(device)

    def sync() -> None:
        if a.device == "cuda":
            torch.cuda.synchronize()

    def loss_of(outputs) -> torch.Tensor:
        return sum(weight * loss_fn(logits, y) for logits, weight in weighted_logits(outputs))

    def forward():
        if a.bfloat16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return net(x)
        return net(x)

    def step() -> float:
        if a.inference:
            with torch.no_grad():
                return loss_of(forward()).item()
        opt.zero_grad(set_to_none=False)
        loss = loss_of(forward())
        loss.backward()
        opt.step()
        return loss.item()

    if a.inference:
        net.eval()  # dropout off

    where = f"threads {torch.get_num_threads()}"
    if a.device == "cuda":
        where = (f"{torch.cuda.get_device_name()}, cuDNN {torch.backends.cudnn.version()}, cudnn.benchmark on, "
                 f"TF32 off")
    parameters = sum(t.numel() for t in net.parameters())
    print(f"torch {torch.__version__}, {a.net}{' with auxiliary heads' if a.aux else ''} ({parameters:,} parameters), "
          f"{a.device} ({where}), batch {a.batch}, {a.channels} channel(s), {a.classes} classes, input {size}")
    blas, reference = loaded_blas()
    print(f"blas: {blas}")
    print(f"convolutions: mkldnn (oneDNN) {'on' if torch.backends.mkldnn.is_available() else 'off'}, "
          f"{'bfloat16 autocast' if a.bfloat16 else 'float32'}")
    if reference and a.device == "cpu" and not a.allow_reference_blas:
        raise SystemExit("pytorch_nets: PyTorch loaded the reference netlib BLAS, about 3x slower on AlexNet's step "
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
    print(f"pytorch {a.net}{' inference' if a.inference else ''}: median {statistics.median(rates):.2f} images/s "
          f"(min {min(rates):.2f}, max {max(rates):.2f}, {a.repetitions} x {a.steps} steps)")


if __name__ == "__main__":
    main()
