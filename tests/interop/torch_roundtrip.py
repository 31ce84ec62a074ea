#!/usr/bin/env python3
"""Checkpoint interop between tapegrad and PyTorch, both ways (documentation; CI does not run it).

    python3 torch_roundtrip.py TAPEGRAD_CKPT TORCH_CKPT [--inputs X.bin] [--expected Y.bin]
                               [--torch-outputs Z.bin] [--seed N]

1. Builds the MNIST MLP of the examples as torch.nn.Sequential(Linear(784, 256), ReLU(), Linear(256, 128),
   ReLU(), Linear(128, 10)), loads TAPEGRAD_CKPT (written by tapegrad's io::save) with
   load_state_dict(strict=True) and evaluates it on the inputs: raw little-endian float32 [N, 784] from
   --inputs, or N = 8 seeded random ones. With --expected (tapegrad's outputs for the same inputs, raw
   float32 [N, 10]) it prints the largest absolute difference and fails above 1e-4.
2. Builds a freshly initialised MLP (seeded with --seed) and saves its state_dict in safetensors layout to
   TORCH_CKPT, for tapegrad to load with io::load (strict). --torch-outputs writes that model's outputs on
   the same inputs (raw float32 [N, 10]) so the tapegrad side can compare.

Uses the `safetensors` package when it is installed; otherwise the small reader and writer below, which
follow the format: an 8-byte little-endian header size N, N bytes of JSON header (padded with spaces), then
the raw little-endian row-major data, each tensor at its [begin, end) data_offsets.
"""

import argparse
import json
import struct
import sys

import torch

# ---- safetensors, minimal -------------------------------------------------------------------------------

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}
# The reference writer lays tensors out by descending dtype (in the order of its Rust enum), then by name.
_RANK = {"BOOL": 0, "U8": 1, "I8": 2, "I16": 3, "F16": 4, "BF16": 5, "I32": 6, "F32": 7, "F64": 8, "I64": 9}


def st_load(path):
    """name -> tensor from a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header size {n} exceeds the file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        shape = info["shape"]
        if end > len(data) or begin > end:
            raise ValueError(f"{path}: tensor {name!r} lies outside the data")
        if begin == end:
            out[name] = torch.empty(shape, dtype=dtype)
        else:
            out[name] = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype).reshape(shape).clone()
    return out


def st_save(tensors, path, metadata=None):
    """Writes name -> tensor in the reference writer's layout."""
    items = sorted(tensors.items(), key=lambda kv: (-_RANK[_NAMES[kv[1].dtype]], kv[0]))
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = dict(sorted(metadata.items()))
    for name, t in items:
        b = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


try:  # the real package, when available
    from safetensors.torch import load_file as _load_file, save_file as _save_file

    def load_file(path):
        return _load_file(path)

    def save_file(tensors, path):
        _save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata={"format": "pt"})

    BACKEND = "safetensors package"
except ImportError:
    def load_file(path):
        return st_load(path)

    def save_file(tensors, path):
        st_save(tensors, path, metadata={"format": "pt"})

    BACKEND = "built-in reader/writer"

# ---- the round trip --------------------------------------------------------------------------------------


def mnist_mlp():
    return torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))


def read_f32(path, cols):
    with open(path, "rb") as f:
        raw = f.read()
    t = torch.frombuffer(bytearray(raw), dtype=torch.float32).clone()
    return t.reshape(-1, cols)


def write_f32(path, t):
    with open(path, "wb") as f:
        f.write(t.detach().contiguous().to(torch.float32).numpy().tobytes())


def main():
    if sys.byteorder != "little":
        sys.exit("safetensors data is little-endian; this script assumes a little-endian host")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tapegrad_ckpt", help="a tapegrad checkpoint of the 784-256-128-10 MLP (io::save)")
    ap.add_argument("torch_ckpt", help="where to write a PyTorch state_dict in safetensors layout")
    ap.add_argument("--inputs", help="raw float32 [N, 784] inputs (default: 8 seeded random rows)")
    ap.add_argument("--expected", help="tapegrad's raw float32 [N, 10] outputs for the inputs, to compare")
    ap.add_argument("--torch-outputs", help="write the saved torch model's outputs here (raw float32 [N, 10])")
    ap.add_argument("--seed", type=int, default=1234, help="seed of the torch model that is saved")
    args = ap.parse_args()
    torch.set_grad_enabled(False)

    # 1. tapegrad -> torch
    state = load_file(args.tapegrad_ckpt)
    model = mnist_mlp()
    model.load_state_dict(state, strict=True)  # raises on any missing, unexpected or mis-shaped name
    model.eval()
    if args.inputs:
        x = read_f32(args.inputs, 784)
    else:
        g = torch.Generator().manual_seed(0)
        x = torch.rand(8, 784, generator=g)
    y = model(x)
    print(f"[{BACKEND}] loaded {args.tapegrad_ckpt} into torch {torch.__version__}: "
          f"{len(state)} tensors, outputs {tuple(y.shape)}")
    status = 0
    if args.expected:
        want = read_f32(args.expected, 10)
        diff = (y - want).abs().max().item()
        print(f"tapegrad -> torch: max |torch - tapegrad| = {diff:.3g}")
        if not diff <= 1e-4:
            print("FAILED: outputs differ")
            status = 1

    # 2. torch -> tapegrad
    torch.manual_seed(args.seed)
    fresh = mnist_mlp()
    save_file(fresh.state_dict(), args.torch_ckpt)
    print(f"saved a torch state_dict ({', '.join(fresh.state_dict().keys())}) to {args.torch_ckpt}")
    if args.torch_outputs:
        write_f32(args.torch_outputs, fresh(x))
        print(f"wrote the torch model's outputs on the inputs to {args.torch_outputs}")
    # The file reads back to the same tensors.
    back = load_file(args.torch_ckpt)
    assert all(torch.equal(back[k], v) for k, v in fresh.state_dict().items())
    return status


if __name__ == "__main__":
    sys.exit(main())
