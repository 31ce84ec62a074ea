#!/usr/bin/python3
"""PyTorch reference values for tapegrad's LayerNorm, MultiheadAttention and TransformerEncoderLayer.

    /usr/bin/python3 tests/interop/make_attention_reference.py [OUT.hpp]   (default: attention_reference.hpp beside it)

Builds each module in PyTorch (double precision, seeded), runs it on seeded inputs, backpropagates
sum(output * grad_output) for a seeded grad_output, and writes a C++ header holding, per case, the module's
state_dict (PyTorch's names and shapes), the inputs, grad_output, the output, the attention weights where
asked, and the gradients of every input and parameter. The doctests of nn/layer_norm, nn/attention and
nn/transformer load the state_dict into the tapegrad module by name and must reproduce every value.

Masks: PyTorch 1.13 takes boolean key padding masks (True = padding); tapegrad's are additive, so the header
holds the float equivalent (0 keep, -inf pad). Dropout is 0 (outputs are deterministic). Made with
torch 1.13.1 (Debian's python3-torch).
"""

import math
import os
import sys

import torch

torch.set_default_dtype(torch.float64)
INF = float("inf")


def fmt(v):
    if v == INF:
        return "kInf"
    if v == -INF:
        return "-kInf"
    return repr(float(v))


def tensor_entry(name, t):
    t = t.detach().to(torch.float64).contiguous()
    shape = ", ".join(str(d) for d in t.shape)
    vals = ", ".join(fmt(v) for v in t.reshape(-1).tolist())
    return f'{{"{name}", {{{shape}}}, {{{vals}}}}}'


def case_entry(name, module, inputs, output, weights, grad_output, extra_grads):
    """inputs: list of (name, tensor); grads of inputs that require grad and of every parameter."""
    state = [tensor_entry(k, v) for k, v in module.state_dict().items()]
    ins = [tensor_entry(k, v) for k, v in inputs]
    grads = [tensor_entry(k, v.grad) for k, v in inputs if v.requires_grad]
    grads += [tensor_entry(k, p.grad) for k, p in module.named_parameters()]
    grads += extra_grads
    w = tensor_entry("weights", weights) if weights is not None else '{"", {}, {}}'
    lines = [f'    {{"{name}",',
             "     {" + ",\n      ".join(state) + "},",
             "     {" + ",\n      ".join(ins) + "},",
             "     " + tensor_entry("grad_output", grad_output) + ",",
             "     " + tensor_entry("output", output) + ",",
             "     " + w + ",",
             "     {" + ",\n      ".join(grads) + "}}"]
    return "\n".join(lines)


def randomize(module, gen):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) * 1.0 - 0.5)


def run(module, inputs, call, gen):
    out = call()
    weights = None
    if isinstance(out, tuple):
        out, weights = out
    r = torch.rand(out.shape, generator=gen) * 2 - 1
    (out * r).sum().backward()
    return out, weights, r


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "attention_reference.hpp")
    gen = torch.Generator().manual_seed(20261204)
    cases = []

    def rnd(*shape, grad=True):
        t = torch.rand(shape, generator=gen) * 2 - 1
        return t.requires_grad_(grad)

    # ---- LayerNorm ------------------------------------------------------------------------------------
    ln = torch.nn.LayerNorm([3, 4], eps=1e-5)
    randomize(ln, gen)
    x = rnd(2, 5, 3, 4)
    with torch.no_grad():
        x[0, 0] += 1000.0  # a large mean against a small spread
    o, w, r = run(ln, [("x", x)], lambda: ln(x), gen)
    cases.append(case_entry("layer_norm [3, 4] affine", ln, [("x", x)], o, None, r, []))

    ln2 = torch.nn.LayerNorm(6, eps=1e-3, elementwise_affine=False)
    x = rnd(4, 6)
    o, w, r = run(ln2, [("x", x)], lambda: ln2(x), gen)
    cases.append(case_entry("layer_norm 6 no affine eps 1e-3", ln2, [("x", x)], o, None, r, []))

    # ---- MultiheadAttention ---------------------------------------------------------------------------
    E, H, L, S, N = 8, 2, 4, 5, 2
    mha = torch.nn.MultiheadAttention(E, H)
    randomize(mha, gen)
    x = rnd(L, N, E)
    o, w, r = run(mha, [("query", x)], lambda: mha(x, x, x, need_weights=True), gen)
    cases.append(case_entry("mha self-attention [L, N, E]", mha, [("query", x)], o, w, r, []))

    mha = torch.nn.MultiheadAttention(E, H, batch_first=True)
    randomize(mha, gen)
    q, k, v = rnd(N, L, E), rnd(N, S, E), rnd(N, S, E)
    attn = torch.rand(L, S, generator=gen) - 0.5
    attn[0, 1] = -INF
    attn[2, 4] = -INF
    pad = torch.zeros(N, S, dtype=torch.bool)
    pad[1, 3:] = True
    padf = torch.zeros(N, S).masked_fill(pad, -INF)
    ins = [("query", q), ("key", k), ("value", v), ("attn_mask", attn), ("key_padding_mask", padf)]
    o, w, r = run(mha, ins, lambda: mha(q, k, v, key_padding_mask=pad, attn_mask=attn, need_weights=True,
                                        average_attn_weights=False), gen)
    cases.append(case_entry("mha cross-attention batch_first, attn_mask and key_padding_mask, weights per head",
                            mha, ins, o, w, r, []))

    mha = torch.nn.MultiheadAttention(E, H, bias=False)
    randomize(mha, gen)
    q, kv = rnd(L, N, E), rnd(S, N, E)
    attn3 = torch.rand(N * H, L, S, generator=gen) - 0.5
    ins = [("query", q), ("key", kv), ("attn_mask", attn3)]
    o, w, r = run(mha, ins, lambda: mha(q, kv, kv, attn_mask=attn3, need_weights=True), gen)
    cases.append(case_entry("mha key is value, no bias, 3-D attn_mask", mha, ins, o, w, r, []))

    # ---- TransformerEncoderLayer ----------------------------------------------------------------------
    F = 16
    enc = torch.nn.TransformerEncoderLayer(E, H, dim_feedforward=F, dropout=0.0)
    randomize(enc, gen)
    src = rnd(L, N, E)
    pad = torch.zeros(N, L, dtype=torch.bool)
    pad[0, 3] = True
    padf = torch.zeros(N, L).masked_fill(pad, -INF)
    ins = [("src", src), ("src_key_padding_mask", padf)]
    o, w, r = run(enc, ins, lambda: enc(src, src_key_padding_mask=pad), gen)
    cases.append(case_entry("encoder post-norm relu, key padding", enc, ins, o, None, r, []))

    enc = torch.nn.TransformerEncoderLayer(E, H, dim_feedforward=F, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True, layer_norm_eps=1e-6)
    randomize(enc, gen)
    src = rnd(N, L, E)
    causal = torch.triu(torch.full((L, L), -INF), diagonal=1)
    ins = [("src", src), ("src_mask", causal)]
    o, w, r = run(enc, ins, lambda: enc(src, src_mask=causal), gen)
    cases.append(case_entry("encoder pre-norm gelu batch_first, causal", enc, ins, o, None, r, []))

    with open(out_path, "w") as f:
        f.write("#pragma once\n")
        f.write("// Generated by tests/interop/make_attention_reference.py with torch " + torch.__version__ +
                " (do not edit; rerun the script).\n")
        f.write("// PyTorch's outputs and gradients for LayerNorm, MultiheadAttention and TransformerEncoderLayer.\n\n")
        f.write("#include <cstdint>\n#include <limits>\n#include <string>\n#include <vector>\n\n")
        f.write("namespace tapegrad::testing::attention_reference {\n\n")
        f.write("inline constexpr double kInf = std::numeric_limits<double>::infinity();\n\n")
        f.write("/// A named tensor: PyTorch's name, shape and row-major values.\n")
        f.write("struct Named {\n    std::string name;\n    std::vector<int64_t> shape;\n    std::vector<double> values;\n};\n\n")
        f.write("/// One module run: its state_dict, inputs (masks additive), grad_output, output, attention weights\n")
        f.write("/// (empty name when not asked for) and the gradients of the inputs that require grad and of every\n")
        f.write("/// parameter, by name.\n")
        f.write("struct Case {\n    std::string name;\n    std::vector<Named> state;\n    std::vector<Named> inputs;\n"
                "    Named grad_output;\n    Named output;\n    Named weights;\n    std::vector<Named> grads;\n};\n\n")
        f.write("inline const std::vector<Case>& cases() {\n    static const std::vector<Case> all = {\n")
        f.write(",\n".join(cases))
        f.write("};\n    return all;\n}\n\n}  // namespace tapegrad::testing::attention_reference\n")
    print(f"wrote {len(cases)} cases to {out_path}")


if __name__ == "__main__":
    main()
