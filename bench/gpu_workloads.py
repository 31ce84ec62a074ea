#!/usr/bin/env python3
"""The MNIST MLP workloads of bench/workloads_cuda.cpp in PyTorch, eager or as one CUDA graph.

    python3 bench/gpu_workloads.py --workload mlp_l --mode eager --reps 3 [--data DIR]
    python3 bench/gpu_workloads.py --workload mlp_l --mode graph --reps 3
    python3 bench/gpu_workloads.py --workload mlp_s --device cpu --reps 1 --limit-batches 50   # a quick check

Workloads (one epoch each, drop-last batches, softmax cross-entropy, torch.optim.SGD):
    mlp_s   784-128-10 ReLU, lr 0.1, batch 64
    mlp_l   784-512-256-10 ReLU, lr 0.05 momentum 0.9, batch 128
    mlp_xl  784-4096-4096-10 ReLU, lr 0.05 momentum 0.9, batch 1024
Initialisation: PyTorch's defaults (nn.Linear), seeded. Pixels standardised as tapegrad's load_mnist does.

What is timed, as in workloads_cuda: the training images are shuffled once (a fixed permutation) and put on
the device before any timing; an epoch walks contiguous batches of that copy. Eager mode feeds each batch
as a slice of it (a view, as a PyTorch user would write it). Graph mode follows the whole-network capture
recipe of PyTorch's CUDA graphs documentation: static input and target tensors, three warm-up steps on a
side stream, one graph holding forward, loss, backward and optimizer.step(), then per batch two copies
into the static tensors and a replay. The warm-up steps train the network, so the parameters are put back
and the momentum buffers zeroed after the capture: the timed epoch starts from the initial weights, as in
eager mode. Capture is not timed. torch.optim.SGD needs no capturable=True (it keeps no step count on the
host; that flag belongs to Adam-like optimizers), and its foreach update is captured as it is. The clock stops after torch.cuda.synchronize(). TF32 is off.

Output, one line per repetition after one warm-up (bench/workloads_common.hpp's format):
    pytorch-eager WORKLOAD 1 rep=R epoch_s=... samples_per_s=... test_acc=...
Runs with PyTorch 1.13 and 2.x. --device cpu runs eager mode on the CPU (for checking the script only).
"""

import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

SPECS = {
    "mlp_s": dict(sizes=[784, 128, 10], lr=0.1, momentum=0.0, batch=64),
    "mlp_l": dict(sizes=[784, 512, 256, 10], lr=0.05, momentum=0.9, batch=128),
    "mlp_xl": dict(sizes=[784, 4096, 4096, 10], lr=0.05, momentum=0.9, batch=1024),
}
INIT_SEED = 1     # seed of the initial weights
SHUFFLE_SEED = 2  # seed of the fixed order of the training images
WARMUP_STEPS = 100  # steps of the untimed warm-up repetition (workloads_common.hpp's warmup_steps)
EVAL_BATCH = 1000
GRAPH_WARMUP_STEPS = 3  # the documented recipe's warm-up iterations before capture
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def fail(msg, code=2):
    print("gpu_workloads.py: " + msg, file=sys.stderr)
    sys.exit(code)


# ---- data ----------------------------------------------------------------------------------------------

def mnist_dirs(arg):
    """Where to look for the IDX files: --data, else tapegrad's own search order and the carried copy."""
    if arg:
        return [arg]
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = []
    if os.environ.get("TAPEGRAD_MNIST_DIR"):
        dirs.append(os.environ["TAPEGRAD_MNIST_DIR"])
    dirs.append(os.path.join(here, "..", ".deps", "mnist"))
    base = os.environ.get("TAPEGRAD_DATA_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "tapegrad")
    dirs.append(os.path.join(base, "mnist"))
    dirs.append("/root/.cache/tapegrad/mnist")
    return dirs


def find_file(dirs, name):
    for d in dirs:
        for candidate in (os.path.join(d, name), os.path.join(d, name + ".gz")):
            if os.path.isfile(candidate):
                return candidate
    return None


def read_idx(path, expect_dims):
    """An IDX file (raw or gzip) as a uint8 numpy array; checks the magic, the rank and the length."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        fail("%s: not an unsigned-byte IDX file (magic %r)" % (path, data[:4]))
    ndim = data[3]
    if ndim != expect_dims:
        fail("%s: expected %d dimensions, the header says %d" % (path, expect_dims, ndim))
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(data) - offset != count:
        fail("%s: is truncated or padded: header says %s (%d bytes), file holds %d"
             % (path, dims, count, len(data) - offset))
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def load_mnist(arg):
    dirs = mnist_dirs(arg)
    paths = {}
    for key, name in FILES.items():
        paths[key] = find_file(dirs, name)
        if paths[key] is None:
            fail("MNIST file %s(.gz) not found in %s (fetch it with cmake/fetch_mnist.sh or pass --data DIR)"
                 % (name, ", ".join(dirs)))

    def images(p):
        a = read_idx(p, 3).astype(np.float32).reshape(-1, 28 * 28)
        return (a / 255.0 - MNIST_MEAN) / MNIST_STD

    def labels(p):
        return read_idx(p, 1).astype(np.int64)

    out = (images(paths["train_images"]), labels(paths["train_labels"]),
           images(paths["test_images"]), labels(paths["test_labels"]))
    if out[0].shape[0] != out[1].shape[0] or out[2].shape[0] != out[3].shape[0]:
        fail("MNIST image and label counts differ")
    return out


# ---- the network and one repetition --------------------------------------------------------------------

def build_mlp(sizes, device):
    torch.manual_seed(INIT_SEED)  # PyTorch's default initialisation, reproducibly
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).to(device)


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def evaluate(net, x, y):
    net.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, x.shape[0], EVAL_BATCH):
            logits = net(x[start:start + EVAL_BATCH])
            correct += int((logits.argmax(dim=1) == y[start:start + EVAL_BATCH]).sum().item())
    net.train()
    return correct / x.shape[0]


def eager_rep(spec, data, steps, device):
    """Trains a fresh network for `steps` batches; returns (seconds, test accuracy)."""
    x_train, y_train, x_test, y_test = data
    net = build_mlp(spec["sizes"], device)
    opt = torch.optim.SGD(net.parameters(), lr=spec["lr"], momentum=spec["momentum"])
    b = spec["batch"]
    synchronize(device)
    t0 = time.perf_counter()
    for i in range(steps):
        x = x_train[i * b:(i + 1) * b]
        y = y_train[i * b:(i + 1) * b]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    synchronize(device)
    secs = time.perf_counter() - t0
    return secs, evaluate(net, x_test, y_test)


def graph_rep(spec, data, steps, device):
    """As eager_rep, with each training step one replay of a captured CUDA graph."""
    x_train, y_train, x_test, y_test = data
    net = build_mlp(spec["sizes"], device)
    opt = torch.optim.SGD(net.parameters(), lr=spec["lr"], momentum=spec["momentum"])
    b = spec["batch"]
    initial = [p.detach().clone() for p in net.parameters()]
    static_x = x_train[:b].clone()
    static_y = y_train[:b].clone()

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(GRAPH_WARMUP_STEPS):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(static_x), static_y).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)

    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)  # backward in the graph allocates .grad from the graph's pool
    with torch.cuda.graph(graph):
        static_loss = F.cross_entropy(net(static_x), static_y)
        static_loss.backward()
        opt.step()

    # Undo the warm-up's training: the replays update these very tensors in place.
    with torch.no_grad():
        for p, p0 in zip(net.parameters(), initial):
            p.copy_(p0)
        for state in opt.state.values():
            buf = state.get("momentum_buffer")
            if buf is not None:
                buf.zero_()  # the first replay then sets buf = grad, as SGD's first eager step does

    synchronize(device)
    t0 = time.perf_counter()
    for i in range(steps):
        static_x.copy_(x_train[i * b:(i + 1) * b])
        static_y.copy_(y_train[i * b:(i + 1) * b])
        graph.replay()
    synchronize(device)
    secs = time.perf_counter() - t0
    return secs, evaluate(net, x_test, y_test)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workload", required=True, choices=sorted(SPECS))
    ap.add_argument("--mode", default="eager", choices=["eager", "graph"])
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions, each after one warm-up")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--data", default="", help="folder with the four MNIST IDX files (raw or .gz)")
    ap.add_argument("--limit-batches", type=int, default=0,
                    help="train on only this many batches per epoch (a quick check; 0: the whole epoch)")
    args = ap.parse_args()
    if args.reps < 1:
        fail("--reps must be at least 1, got %d" % args.reps)
    if args.device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda: torch %s sees no CUDA GPU (torch.version.cuda = %s); use --device cpu to check "
             "the script on the CPU" % (torch.__version__, torch.version.cuda))
    if args.mode == "graph" and args.device != "cuda":
        fail("--mode graph needs CUDA (torch.cuda.CUDAGraph): run it with --device cuda on a GPU")

    # TF32 off, as in tapegrad's cuBLAS calls (the default there and in PyTorch's matmul since 1.12).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print("gpu_workloads.py: torch %s (CUDA %s) on %s, %s mode, TF32 off"
          % (torch.__version__, torch.version.cuda, where, args.mode), file=sys.stderr)
    spec = SPECS[args.workload]
    x_train, y_train, x_test, y_test = load_mnist(args.data)
    order = np.random.RandomState(SHUFFLE_SEED).permutation(x_train.shape[0])  # fixed, before any timing
    data = (torch.from_numpy(x_train[order]).to(device), torch.from_numpy(y_train[order]).to(device),
            torch.from_numpy(x_test).to(device), torch.from_numpy(y_test).to(device))

    batches = x_train.shape[0] // spec["batch"]  # drop-last
    if args.limit_batches > 0:
        batches = min(batches, args.limit_batches)
        print("gpu_workloads.py: --limit-batches: %d batches per epoch (not a full epoch)" % batches,
              file=sys.stderr)
    rep = graph_rep if args.mode == "graph" else eager_rep
    framework = "pytorch-" + args.mode

    rep(spec, data, min(batches, WARMUP_STEPS), device)  # warm-up: allocator, cuBLAS handles, kernels
    for r in range(1, args.reps + 1):
        secs, acc = rep(spec, data, batches, device)
        samples = batches * spec["batch"]
        print("%s %s 1 rep=%d epoch_s=%.6g samples_per_s=%.6g test_acc=%.6g"
              % (framework, args.workload, r, secs, samples / secs, acc), flush=True)


if __name__ == "__main__":
    main()
