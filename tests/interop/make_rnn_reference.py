#!/usr/bin/env python3
"""Reference values of PyTorch's recurrent modules, for tapegrad's tests (tests/tapegrad/nn/rnn_test.cpp).

    python3 tests/interop/make_rnn_reference.py   # rewrites the two files below; run from the repository root

For each case below it builds the torch.nn module in double precision from a fixed seed, runs it on seeded
inputs (with pack_padded_sequence where the case has lengths, unpacked with pad_packed_sequence to the full
length, so padded outputs are 0), backpropagates  sum(output * r_out) + sum(h_n * r_h) [+ sum(c_n * r_c)]
for seeded weights r, and writes everything the test needs:

  tests/tapegrad/nn/rnn_reference.hpp   inputs, state_dict (in order), r, outputs and every gradient, and
                                        the bytes of a safetensors file holding the state_dicts of all cases
                                        (names prefixed "<case>.", float64) as torch wrote it, for the test's
                                        checkpoint load (torch -> tapegrad)

Made with torch 1.13 (Debian's python3-torch). The other direction of the checkpoint round trip is
tests/interop/rnn_roundtrip.py.
"""

import os
import sys
import tempfile

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_roundtrip import st_save  # noqa: E402  (the minimal safetensors writer, no extra package)

# name, kind, input, hidden, layers, bidirectional, batch_first, bias, nonlinearity, T, B, lengths, h0, c0
CASES = [
    ("rnn_tanh_2l_bi_len", "RNN", 3, 4, 2, True, False, True, "tanh", 5, 3, [5, 3, 1], True, False),
    ("rnn_relu_bf", "RNN", 3, 5, 1, False, True, True, "relu", 4, 2, None, False, False),
    ("lstm_1l", "LSTM", 3, 4, 1, False, False, True, None, 6, 2, None, False, False),
    ("lstm_2l_bi_len_bf", "LSTM", 4, 3, 2, True, True, True, None, 5, 3, [2, 5, 4], True, True),
    ("gru_2l_bi_len", "GRU", 3, 4, 2, True, False, True, None, 5, 3, [4, 5, 2], True, False),
    ("gru_bf_nobias", "GRU", 2, 3, 1, False, True, False, None, 4, 2, None, True, False),
    ("rnncell", "RNNCell", 3, 4, 1, False, False, True, "tanh", 1, 3, None, True, False),
    ("lstmcell", "LSTMCell", 3, 4, 1, False, False, True, None, 1, 3, None, True, True),
    ("grucell", "GRUCell", 3, 4, 1, False, False, True, None, 1, 3, None, True, False),
]


def build(kind, inp, hid, layers, bi, bf, bias, nl):
    if kind == "RNN":
        return torch.nn.RNN(inp, hid, num_layers=layers, nonlinearity=nl, bias=bias, batch_first=bf,
                            bidirectional=bi)
    if kind == "LSTM":
        return torch.nn.LSTM(inp, hid, num_layers=layers, bias=bias, batch_first=bf, bidirectional=bi)
    if kind == "GRU":
        return torch.nn.GRU(inp, hid, num_layers=layers, bias=bias, batch_first=bf, bidirectional=bi)
    if kind == "RNNCell":
        return torch.nn.RNNCell(inp, hid, bias=bias, nonlinearity=nl)
    if kind == "LSTMCell":
        return torch.nn.LSTMCell(inp, hid, bias=bias)
    return torch.nn.GRUCell(inp, hid, bias=bias)


def run_case(case, seed):
    name, kind, inp, hid, layers, bi, bf, bias, nl, T, B, lengths, use_h0, use_c0 = case
    torch.manual_seed(seed)
    m = build(kind, inp, hid, layers, bi, bf, bias, nl).double()
    cell = kind.endswith("Cell")
    dirs = 2 if bi else 1
    if cell:
        x = torch.randn(B, inp, dtype=torch.float64, requires_grad=True)
        sshape = (B, hid)
    else:
        x = torch.randn(*((B, T, inp) if bf else (T, B, inp)), dtype=torch.float64, requires_grad=True)
        sshape = (layers * dirs, B, hid)
    h0 = torch.randn(*sshape, dtype=torch.float64, requires_grad=True) if use_h0 else None
    c0 = torch.randn(*sshape, dtype=torch.float64, requires_grad=True) if use_c0 else None
    if cell:
        if kind == "LSTMCell":
            h, c = m(x, (h0, c0))
            out, hn, cn = None, h, c
        else:
            out, hn, cn = None, m(x, h0), None
    else:
        state = ((h0, c0) if h0 is not None else None) if kind == "LSTM" else h0
        inp_seq = pack_padded_sequence(x, torch.tensor(lengths), batch_first=bf, enforce_sorted=False) \
            if lengths else x
        res, st = m(inp_seq, state)
        if lengths:
            res, _ = pad_packed_sequence(res, batch_first=bf, total_length=T)
        out = res
        hn, cn = (st if kind == "LSTM" else (st, None))
    r_out = torch.randn(*out.shape, dtype=torch.float64) if out is not None else None
    r_h = torch.randn(*hn.shape, dtype=torch.float64)
    r_c = torch.randn(*cn.shape, dtype=torch.float64) if cn is not None else None
    loss = (hn * r_h).sum()
    if out is not None:
        loss = loss + (out * r_out).sum()
    if cn is not None:
        loss = loss + (cn * r_c).sum()
    loss.backward()
    flat = lambda t: [] if t is None else t.detach().reshape(-1).tolist()  # noqa: E731
    shape = lambda t: [] if t is None else list(t.shape)  # noqa: E731
    sd = m.state_dict()
    rec = {
        "name": name, "kind": kind, "input": inp, "hidden": hid, "layers": layers, "bi": bi, "bf": bf,
        "bias": bias, "relu": nl == "relu", "x_shape": list(x.shape), "x": flat(x), "h0": flat(h0), "c0": flat(c0),
        "lengths": lengths or [], "param_names": list(sd.keys()), "params": [flat(v) for v in sd.values()],
        "r_out": flat(r_out), "r_h": flat(r_h), "r_c": flat(r_c), "out_shape": shape(out), "out": flat(out),
        "h_n": flat(hn), "c_n": flat(cn), "dx": flat(x.grad), "dh0": flat(h0.grad if h0 is not None else None),
        "dc0": flat(c0.grad if c0 is not None else None),
        "dparams": [flat(p.grad) for p in m.parameters()],
    }
    return rec, {f"{name}.{k}": v.detach().clone() for k, v in sd.items()}


def cpp_vec(v, typ="double"):
    return "std::vector<" + typ + ">{" + ", ".join(repr(float(a)) if typ == "double" else str(a) for a in v) + "}"


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    recs, tensors = [], {}
    for i, case in enumerate(CASES):
        rec, sd = run_case(case, 100 + i)
        recs.append(rec)
        tensors.update(sd)
    lines = [
        "#pragma once",
        "// Generated by tests/interop/make_rnn_reference.py with torch " + torch.__version__ + " (do not edit):",
        "// torch.nn's recurrent modules in double, their outputs and the gradients of",
        "// sum(output * r_out) + sum(h_n * r_h) [+ sum(c_n * r_c)]; see that script.",
        "",
        "#include <cstdint>",
        "#include <string>",
        "#include <vector>",
        "",
        "namespace tapegrad::testing {",
        "",
        "struct RnnReference {",
        "    std::string name, kind;",
        "    int64_t input, hidden, layers;",
        "    bool bidirectional, batch_first, bias, relu;",
        "    std::vector<int64_t> x_shape;",
        "    std::vector<double> x, h0, c0;",
        "    std::vector<int64_t> lengths;",
        "    std::vector<std::string> param_names;",
        "    std::vector<std::vector<double>> params;",
        "    std::vector<double> r_out, r_h, r_c;",
        "    std::vector<int64_t> out_shape;",
        "    std::vector<double> out, h_n, c_n, dx, dh0, dc0;",
        "    std::vector<std::vector<double>> dparams;",
        "};",
        "",
        "inline std::vector<RnnReference> rnn_references() {",
        "    std::vector<RnnReference> refs;",
    ]
    for r in recs:
        b = lambda v: "true" if v else "false"  # noqa: E731
        lines.append("    refs.push_back(RnnReference{")
        lines.append(f'        "{r["name"]}", "{r["kind"]}", {r["input"]}, {r["hidden"]}, {r["layers"]}, '
                     f'{b(r["bi"])}, {b(r["bf"])}, {b(r["bias"])}, {b(r["relu"])},')
        lines.append("        " + cpp_vec(r["x_shape"], "int64_t") + ",")
        for k in ("x", "h0", "c0"):
            lines.append("        " + cpp_vec(r[k]) + ",")
        lines.append("        " + cpp_vec(r["lengths"], "int64_t") + ",")
        lines.append("        std::vector<std::string>{" + ", ".join(f'"{n}"' for n in r["param_names"]) + "},")
        lines.append("        std::vector<std::vector<double>>{" + ", ".join(cpp_vec(p) for p in r["params"]) + "},")
        for k in ("r_out", "r_h", "r_c"):
            lines.append("        " + cpp_vec(r[k]) + ",")
        lines.append("        " + cpp_vec(r["out_shape"], "int64_t") + ",")
        for k in ("out", "h_n", "c_n", "dx", "dh0", "dc0"):
            lines.append("        " + cpp_vec(r[k]) + ",")
        lines.append("        std::vector<std::vector<double>>{" + ", ".join(cpp_vec(p) for p in r["dparams"]) + "}});")
    lines += ["    return refs;", "}", ""]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rnn_reference.safetensors")
        st_save(tensors, path, metadata={"format": "pt"})
        with open(path, "rb") as f:
            blob = f.read()
    lines.append("/// A safetensors file of every case's state_dict (names \"<case>.<param>\"), as torch wrote it.")
    lines.append("inline std::vector<unsigned char> rnn_reference_checkpoint() {")
    lines.append("    return {")
    for i in range(0, len(blob), 24):
        lines.append("        " + ", ".join(str(b) for b in blob[i:i + 24]) + ",")
    lines += ["    };", "}", "", "}  // namespace tapegrad::testing", ""]
    with open(os.path.join(root, "tests/tapegrad/nn/rnn_reference.hpp"), "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {len(recs)} cases, {len(tensors)} tensors")


if __name__ == "__main__":
    main()
