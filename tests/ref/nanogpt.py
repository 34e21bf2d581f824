#!/usr/bin/env python3
"""pytorch_ref.py — independent reference for mixlm's decoder (run by tests/test_pytorch_ref.c).

A minimal nanoGPT-equivalent GPT (pre-LN blocks, LayerNorm eps 1e-5 with optional bias, causal
self-attention with c_attn (3C,C) and c_proj, MLP c_fc (4C,C) -> GELU(tanh) -> c_proj, learned
wpe, lm_head tied to wte, no dropout) in float64 loads mixlm's safetensors checkpoint (parsed
here with struct/json/numpy, not the `safetensors` package), runs the batch mixlm ran and
compares logits, loss and every parameter gradient.
Not a training script (bench/nanogpt_ref.py) and not a test of any mixer but dense.

Usage: pytorch_ref.py DIR...   each DIR holding model.safetensors, grads.safetensors, batch.json,
x.bin, y.bin (int32 B*T), logits.bin (float32 B*T*V). Exit 0 when all agree, 1 otherwise.
Metric: max |mixlm - torch| / max |torch| over each tensor (loss: plain relative error);
tolerance 1e-4 (fp32 mixlm against the float64 reference: observed ~1e-6).
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TOL = 1e-4


def fnv1a64_words(buf, h=0xCBF29CE484222325):
    """mixlm's checksum: FNV-1a over little-endian 64-bit words, then the tail bytes; continues
    from h (several segments in sequence)."""
    prime = 0x100000001B3
    mask = (1 << 64) - 1
    n8 = len(buf) // 8
    for w in np.frombuffer(buf, dtype="<u8", count=n8).tolist():
        h = ((h ^ w) * prime) & mask
    for b in buf[n8 * 8:]:
        h = ((h ^ b) * prime) & mask
    return h


def mixlm_checksum(data, meta):
    """The tensor data, then each metadata key and value but "checksum" (file order, NUL-ended)."""
    h = fnv1a64_words(data)
    for k, v in meta.items():
        if k != "checksum":
            h = fnv1a64_words(k.encode("utf-8") + b"\0", h)
            h = fnv1a64_words(v.encode("utf-8") + b"\0", h)
    return "%016x" % h


def read_safetensors(path):
    """Returns (metadata dict, {name: float64 numpy array}); validates the layout."""
    with open(path, "rb") as f:
        raw = f.read()
    (hl,) = struct.unpack("<Q", raw[:8])
    assert 8 + hl <= len(raw), f"{path}: header length {hl} beyond the file"
    assert hl % 8 == 0, f"{path}: header length {hl} not padded to 8"
    header = json.loads(raw[8:8 + hl].decode("utf-8"))
    data = raw[8 + hl:]
    meta = header.pop("__metadata__", {})
    tensors, spans = {}, []
    for name, e in header.items():
        assert e["dtype"] == "F32", f"{name}: dtype {e['dtype']}"
        b, en = e["data_offsets"]
        n = int(np.prod(e["shape"])) if e["shape"] else 1
        assert en - b == 4 * n, f"{name}: {en - b} bytes for shape {e['shape']}"
        spans.append((b, en))
        tensors[name] = np.frombuffer(data[b:en], dtype="<f4").reshape(e["shape"]).astype(np.float64)
    spans.sort()
    pos = 0
    for b, en in spans:
        assert b == pos, f"{path}: gap or overlap at byte {b} (expected {pos})"
        pos = en
    assert pos == len(data), f"{path}: tensors cover {pos} of {len(data)} data bytes"
    if "checksum" in meta:
        got = mixlm_checksum(data, meta)
        assert got == meta["checksum"], f"{path}: checksum {meta['checksum']} but data hashes to {got}"
    return meta, tensors


# ---- nanoGPT's model (model.py), float64, dropout removed --------------------------------------

class LayerNorm(nn.Module):
    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, C, H, bias):
        super().__init__()
        self.c_attn = nn.Linear(C, 3 * C, bias=bias)
        self.c_proj = nn.Linear(C, C, bias=bias)
        self.n_head, self.n_embd = H, C

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
        att = att.masked_fill(~mask, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, C, bias):
        super().__init__()
        self.c_fc = nn.Linear(C, 4 * C, bias=bias)
        self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(4 * C, C, bias=bias)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, C, H, bias):
        super().__init__()
        self.ln_1 = LayerNorm(C, bias)
        self.attn = CausalSelfAttention(C, H, bias)
        self.ln_2 = LayerNorm(C, bias)
        self.mlp = MLP(C, bias)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, H, bias = cfg["n_embd"], cfg["n_head"], bool(cfg["bias"])
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg["vocab_size"], C),
            wpe=nn.Embedding(cfg["block_size"], C),
            h=nn.ModuleList([Block(C, H, bias) for _ in range(cfg["n_layer"])]),
            ln_f=LayerNorm(C, bias),
        ))
        self.lm_head = nn.Linear(C, cfg["vocab_size"], bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying, as nanoGPT

    def forward(self, idx, targets):
        B, T = idx.size()
        pos = torch.arange(0, T, dtype=torch.long)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def check_dir(d):
    meta, params = read_safetensors(os.path.join(d, "model.safetensors"))
    _, grads = read_safetensors(os.path.join(d, "grads.safetensors"))
    cfg = json.loads(meta["config"])
    for spec in cfg["attn"]:
        assert spec == "dense", f"the reference implements dense attention only, not {spec}"
    json.loads(meta["tokenizer"])
    with open(os.path.join(d, "batch.json")) as f:
        batch = json.load(f)
    B, T, V = batch["B"], batch["T"], batch["V"]
    x = np.fromfile(os.path.join(d, "x.bin"), dtype="<i4").reshape(B, T)
    y = np.fromfile(os.path.join(d, "y.bin"), dtype="<i4").reshape(B, T)
    logits_c = np.fromfile(os.path.join(d, "logits.bin"), dtype="<f4").reshape(B, T, V)

    model = GPT(cfg).double()
    # The checkpoint's names must be exactly nanoGPT's state-dict names (lm_head is tied).
    sd_names = {k for k in model.state_dict().keys() if k != "lm_head.weight"}
    ck_names = set(params.keys())
    if sd_names != ck_names:
        print("names differ: only in nanoGPT:", sorted(sd_names - ck_names),
              "only in mixlm:", sorted(ck_names - sd_names), file=sys.stderr)
        return 1
    sd = {k: torch.from_numpy(v) for k, v in params.items()}
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    model.load_state_dict(sd, strict=True)

    logits, loss = model(torch.from_numpy(x).long(), torch.from_numpy(y).long())
    loss.backward()

    fails = 0
    e_logits = rel_err(logits_c, logits.detach().numpy())
    e_loss = abs(batch["loss"] - loss.item()) / abs(loss.item())
    print(f"  logits max rel err {e_logits:.2e}   loss mixlm {batch['loss']:.7f} torch {loss.item():.7f} "
          f"rel err {e_loss:.2e}")
    fails += e_logits > TOL
    fails += e_loss > TOL
    worst, worst_name = 0.0, ""
    named = dict(model.named_parameters())  # the tied weight appears once, as transformer.wte.weight
    for name in sorted(params):
        p = named[name]
        g_ref = p.grad.numpy()
        e = rel_err(grads[name], g_ref)
        if e > worst:
            worst, worst_name = e, name
        if e > TOL:
            print(f"  gradient {name}: rel err {e:.2e} > {TOL:.0e}", file=sys.stderr)
            fails += 1
    print(f"  gradients: {len(params)} tensors, max rel err {worst:.2e} ({worst_name})")
    print("  " + ("FAIL" if fails else "ok") + f" (tolerance {TOL:.0e}, metric max|a-b|/max|b| per tensor)")
    return 1 if fails else 0


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    rc = 0
    for d in sys.argv[1:]:
        print(f"{d}:")
        rc |= check_dir(d)
    return rc


if __name__ == "__main__":
    sys.exit(main())
