#!/usr/bin/env python3
"""A tapegrad checkpoint of recurrent modules loaded in PyTorch (documentation; CI does not run it).

    TAPEGRAD_RNN_ROUNDTRIP_DIR=/tmp/rt build/tests/tapegrad_tests --source-file='*rnn_checkpoint*'
    python3 tests/interop/rnn_roundtrip.py /tmp/rt        # Debian's python3 with python3-torch

The test writes tapegrad_rnn.safetensors (an nn::ModuleDict holding every case of make_rnn_reference.py,
initialised by tapegrad, float64) and, per case, tapegrad's outputs on that case's reference inputs
(<case>.out.bin, <case>.h_n.bin, <case>.c_n.bin: raw little-endian float64). This script builds the same
torch.nn modules, loads each one's state_dict from the file with load_state_dict(strict=True) -- every name,
shape and layout must match -- runs them on the same inputs and fails if any output differs by more than
1e-10.
"""

import os
import sys

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_rnn_reference import CASES, build, run_case  # noqa: E402
from torch_roundtrip import load_file  # noqa: E402


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "."
    state = load_file(os.path.join(folder, "tapegrad_rnn.safetensors"))
    worst, status = 0.0, 0
    for i, case in enumerate(CASES):
        name, kind, inp, hid, layers, bi, bf, bias, nl, T, B, lengths, use_h0, use_c0 = case
        m = build(kind, inp, hid, layers, bi, bf, bias, nl).double()
        sd = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
        m.load_state_dict(sd, strict=True)
        ref, _ = run_case(case, 100 + i)  # the same seeded inputs the reference (and the test) use
        x = torch.tensor(ref["x"], dtype=torch.float64).reshape(ref["x_shape"])
        cell = kind.endswith("Cell")
        dirs = 2 if bi else 1
        sshape = (B, hid) if cell else (layers * dirs, B, hid)
        h0 = torch.tensor(ref["h0"], dtype=torch.float64).reshape(sshape) if ref["h0"] else None
        c0 = torch.tensor(ref["c0"], dtype=torch.float64).reshape(sshape) if ref["c0"] else None
        with torch.no_grad():
            if kind == "LSTMCell":
                out, (hn, cn) = None, m(x, (h0, c0))
            elif cell:
                out, hn, cn = None, m(x, h0), None
            else:
                state_in = ((h0, c0) if h0 is not None else None) if kind == "LSTM" else h0
                seq = pack_padded_sequence(x, torch.tensor(lengths), batch_first=bf, enforce_sorted=False) \
                    if lengths else x
                out, st = m(seq, state_in)
                if lengths:
                    out, _ = pad_packed_sequence(out, batch_first=bf, total_length=T)
                hn, cn = (st if kind == "LSTM" else (st, None))
        for what, t in (("out", out), ("h_n", hn), ("c_n", cn)):
            path = os.path.join(folder, f"{name}.{what}.bin")
            if t is None or not os.path.exists(path):
                continue
            want = torch.frombuffer(bytearray(open(path, "rb").read()), dtype=torch.float64)
            diff = (t.reshape(-1) - want).abs().max().item() if want.numel() else 0.0
            worst = max(worst, diff)
            if not diff <= 1e-10:
                print(f"FAILED: {name} {what}: max |torch - tapegrad| = {diff:.3g}")
                status = 1
    print(f"loaded {len(CASES)} tapegrad modules into torch {torch.__version__} (strict); "
          f"max |torch - tapegrad| over all outputs = {worst:.3g}")
    return status


if __name__ == "__main__":
    sys.exit(main())
