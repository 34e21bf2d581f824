#!/usr/bin/env python3
"""generate_ref.py — PyTorch peer for `mixlm generate --bench`: a nanoGPT-equivalent GPT (float32,
pre-LN, tied head, GELU(tanh)) loaded from a mixlm run's model.safetensors (header parsed here with
struct/json, no `safetensors` package), generating with a KV cache in a plain decode loop.
Not a correctness reference (tests/ref/nanogpt.py check is) and dense attention only.

The context policy is mixlm's INFER_CACHE (infer/infer.h): when the cache holds block_size
tokens, keep the last block_size/2 and re-process them (here as one batched forward, which is
PyTorch's natural prefill), then continue. `--mode slide` times nanoGPT's uncached sampler instead
(full forward over the last block_size tokens for every token).

Usage (Debian's interpreter has torch):
  env -u OPENBLAS_CORETYPE OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/generate_ref.py RUN_DIR \
      --tokens 1000 --threads 2 --repeats 3
Prints one line per repeat and the median tokens/s; --json for one JSON object.
"""
import argparse
import json
import math
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def load_run(path):
    with open(path + "/model.safetensors", "rb") as f:
        raw = f.read()
    (hl,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hl].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = memoryview(raw)[8 + hl:]
    w = {}
    for name, e in header.items():
        if name.startswith("optim."):
            continue
        assert e["dtype"] == "F32", (name, e["dtype"])
        b, en = e["data_offsets"]
        w[name] = torch.from_numpy(np.frombuffer(data[b:en], dtype="<f4").reshape(e["shape"]).copy())
    cfg = json.loads(meta["config"])
    for spec in cfg["attn"]:
        assert spec == "dense", f"the reference implements dense attention only, not {spec}"
    return cfg, json.loads(meta["tokenizer"]), w


class GPT:
    """Functional nanoGPT forward over preloaded weights, with a KV cache (L, H, T, D)."""

    def __init__(self, cfg, w):
        self.C, self.H, self.L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
        self.T, self.V, self.bias = cfg["block_size"], cfg["vocab_size"], bool(cfg["bias"])
        self.D = self.C // self.H
        self.w = w
        g = lambda n: w.get(n)
        self.layers = []
        for l in range(self.L):
            p = f"transformer.h.{l}."
            self.layers.append([g(p + n) for n in (
                "ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                "mlp.c_proj.weight", "mlp.c_proj.bias")])
        self.wte, self.wpe = w["transformer.wte.weight"], w["transformer.wpe.weight"]
        self.lnf_w, self.lnf_b = w["transformer.ln_f.weight"], w.get("transformer.ln_f.bias")
        self.k = torch.zeros(self.L, 1, self.H, self.T, self.D)
        self.v = torch.zeros(self.L, 1, self.H, self.T, self.D)

    def forward(self, idx, pos0, cache=True):
        """idx (1,n) at positions pos0..pos0+n-1; returns the last row's logits (V)."""
        n = idx.shape[1]
        x = self.wte[idx] + self.wpe[pos0:pos0 + n]
        C, H, D = self.C, self.H, self.D
        for l, (l1w, l1b, aw, ab, pw, pb, l2w, l2b, fw, fb, mw, mb) in enumerate(self.layers):
            h = F.layer_norm(x, (C,), l1w, l1b, 1e-5)
            q, k, v = F.linear(h, aw, ab).split(C, dim=2)
            q = q.view(1, n, H, D).transpose(1, 2)
            k = k.view(1, n, H, D).transpose(1, 2)
            v = v.view(1, n, H, D).transpose(1, 2)
            if cache:
                self.k[l, :, :, pos0:pos0 + n] = k
                self.v[l, :, :, pos0:pos0 + n] = v
                k = self.k[l, :, :, :pos0 + n]
                v = self.v[l, :, :, :pos0 + n]
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D))
            if n > 1:  # causal mask inside the new rows (a single new row sees everything cached)
                t = pos0 + n
                mask = torch.ones(n, t, dtype=torch.bool).tril(diagonal=pos0)
                att = att.masked_fill(~mask, float("-inf"))
            y = (F.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(1, n, C)
            x = x + F.linear(y, pw, pb)
            h = F.layer_norm(x, (C,), l2w, l2b, 1e-5)
            x = x + F.linear(F.gelu(F.linear(h, fw, fb), approximate="tanh"), mw, mb)
        x = F.layer_norm(x[:, -1:], (C,), self.lnf_w, self.lnf_b, 1e-5)
        return F.linear(x, self.wte)[0, 0]


def generate(model, prompt, n_new, mode, gen, greedy=False):
    """Returns (prompt seconds, generation seconds, tokens)."""
    seq = list(prompt)
    T, keep = model.T, max(model.T // 2, 1)
    c0 = 0
    t0 = time.perf_counter()
    logits = model.forward(torch.tensor([seq]), 0, cache=(mode == "cache"))
    t1 = time.perf_counter()
    for i in range(n_new):
        if greedy:
            tok = int(torch.argmax(logits))
        else:
            tok = int(torch.multinomial(F.softmax(logits, dim=-1), 1, generator=gen))
        seq.append(tok)
        if i + 1 == n_new:
            break
        n = len(seq)
        if mode == "slide":
            ctx = seq[-T:]
            logits = model.forward(torch.tensor([ctx]), 0, cache=False)
        elif n - c0 > T:  # the cache is full: keep the last half, re-process it from position 0
            c0 = n - keep
            logits = model.forward(torch.tensor([seq[c0:]]), 0)
        else:
            logits = model.forward(torch.tensor([[tok]]), n - 1 - c0)
    return t1 - t0, time.perf_counter() - t1, seq[len(prompt):]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run")
    ap.add_argument("--tokens", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mode", choices=["cache", "slide"], default="cache")
    ap.add_argument("--prompt", default="\n")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--greedy-text", action="store_true",
                    help="print the greedy continuation instead of timing (compare with mixlm --temperature 0)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg, tok, w = load_run(a.run)
    assert tok["type"] == "char", "only char runs here"
    chars = tok["chars"]
    prompt = [chars.index(c) for c in a.prompt]
    model = GPT(cfg, w)
    rates, prates = [], []
    if a.greedy_text:
        with torch.inference_mode():
            _, _, out = generate(model, prompt, a.tokens, a.mode, None, greedy=True)
        sys.stdout.write(a.prompt + "".join(chars[i] for i in out) + "\n")
        return 0
    with torch.inference_mode():
        generate(model, prompt, 8, a.mode, torch.Generator().manual_seed(0))  # warm-up
        for r in range(a.repeats):
            ps, gs, out = generate(model, prompt, a.tokens, a.mode, torch.Generator().manual_seed(a.seed))
            rates.append(len(out) / gs)
            prates.append(len(prompt) / ps)
            if not a.json:
                print(f"repeat {r}: {len(out)} tokens in {gs:.3f} s = {len(out) / gs:.1f} tok/s "
                      f"({1000 * gs / len(out):.3f} ms/token)", flush=True)
    res = {"impl": f"pytorch {torch.__version__}", "mode": a.mode, "tokens": a.tokens, "threads": a.threads,
           "repeats": a.repeats, "gen_tokens_per_s": statistics.median(rates),
           "prompt_tokens_per_s": statistics.median(prates), "all_gen_tokens_per_s": rates}
    if a.json:
        print(json.dumps(res))
    else:
        print(f"pytorch {torch.__version__} {a.mode}: median {res['gen_tokens_per_s']:.1f} tok/s over "
              f"{a.repeats} repeats, {a.threads} threads")


if __name__ == "__main__":
    sys.exit(main())
