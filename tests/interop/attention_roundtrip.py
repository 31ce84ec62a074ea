#!/usr/bin/python3
"""tapegrad -> PyTorch for the attention modules: a tapegrad TransformerEncoderLayer checkpoint loads into
torch.nn.TransformerEncoderLayer with load_state_dict(strict=True) and gives tapegrad's outputs (documentation;
CI does not run it).

    mkdir -p /tmp/attn && TAPEGRAD_ATTENTION_INTEROP_DIR=/tmp/attn \\
        build/tests/tapegrad_tests --source-file='*io/attention_checkpoint_test.cpp'
    /usr/bin/python3 tests/interop/attention_roundtrip.py /tmp/attn

The test writes encoder.safetensors (d_model 8, nhead 2, dim_feedforward 16, post-norm, relu, [L, N, E],
float64), src.f64 (the input [4, 2, 8]) and out.f64 (tapegrad's output). The safetensors file is read with
torch_roundtrip.py's reader (or the safetensors package).
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_roundtrip import load_file  # noqa: E402


def main():
    d = sys.argv[1]
    torch.set_default_dtype(torch.float64)
    state = load_file(os.path.join(d, "encoder.safetensors"))
    enc = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0)
    enc.load_state_dict(state, strict=True)  # raises on any missing, unexpected or mis-shaped name
    enc.eval()
    raw = lambda name: torch.frombuffer(bytearray(open(os.path.join(d, name), "rb").read()), dtype=torch.float64)
    src = raw("src.f64").reshape(4, 2, 8)
    want = raw("out.f64").reshape(4, 2, 8)
    with torch.no_grad():
        got = enc(src)
    diff = (got - want).abs().max().item()
    print(f"loaded {len(state)} tensors ({', '.join(state.keys())}) into torch {torch.__version__}; "
          f"max |torch - tapegrad| = {diff:.3g}")
    return 0 if diff <= 1e-10 else 1


if __name__ == "__main__":
    sys.exit(main())
