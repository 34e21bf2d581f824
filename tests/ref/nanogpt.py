#!/usr/bin/env python3
"""nanogpt.py — nanoGPT's GPT in PyTorch, mixlm's independent reference, used two ways.

nanogpt.py check DIR...   (tests/ref/test_pytorch_ref.c, CTest ref.pytorch): loads mixlm's
  safetensors checkpoint (parsed here with struct/json/numpy, not the `safetensors` package) into
  the model in float64, runs the batch mixlm ran and compares logits, loss and every parameter
  gradient. Each DIR holds model.safetensors, grads.safetensors, batch.json, x.bin, y.bin (int32
  B*T), logits.bin (float32 B*T*V). Exit 0 when all agree, 1 otherwise. Metric: max |mixlm -
  torch| / max |torch| over each tensor (loss: plain relative error); tolerance 1e-4 (fp32 mixlm
  against the float64 reference: observed ~1e-6).

nanogpt.py --data FILE [options]   (bench/train_speed.sh, bench/RESULTS.md): the PyTorch peer for
  mixlm's speed and quality comparison: nanoGPT's training loop (char tokenizer, 90/10 split,
  random-window get_batch, estimate_loss, warmup + cosine get_lr, AdamW with decay on >=2-d params
  only, gradient clipping) on CPU, e.g.
    /usr/bin/python3 tests/ref/nanogpt.py --data /work/shared/data/tinyshakespeare.txt \\
        --layers 4 --heads 4 --dim 128 --context 64 --batch 12 --steps 2000 --threads 2
  Prints `step N loss X ms/step M` lines, `eval step N train X val Y` lines, and finally one JSON
  line {"val_loss", "train_loss", "ms_per_step_median", "steps", ...}. --time-only N times N
  training steps and skips evaluation (val_loss null).
  Best setting on this machine (shared/PLATFORM.md): OMP_WAIT_POLICY=PASSIVE (spinning OpenMP
  threads oversubscribe the 2 cores: 1.6-2.7x slower without it) and OMP_NUM_THREADS = --threads,
  both set here before torch is imported. OPENBLAS_CORETYPE is left as the caller set it: compare
  every peer under the same environment (benchmark with `env -u OPENBLAS_CORETYPE`).

The model: pre-LN blocks, LayerNorm eps 1e-5 with optional bias, causal self-attention with
c_attn (3C,C) and c_proj, MLP c_fc (4C,C) -> GELU(tanh) -> c_proj, learned wpe, lm_head tied to
wte, dropout only with --dropout. Not a general trainer (no checkpoints, no sampling, no GPU) and
not a reference for any mixer but dense.
"""
import argparse
import json
import math
import os
import resource
import statistics
import struct
import sys
import time

TOL = 1e-4
CHECK = len(sys.argv) > 1 and sys.argv[1] == "check"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="training text file (UTF-8)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--steps", type=int, default=2000, help="max iters (also lr_decay_iters)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--beta2", type=float, default=0.99)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0, help="0 = off")
    p.add_argument("--eval-every", type=int, default=250, help="0 = only at the end")
    p.add_argument("--eval-batches", type=int, default=20)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bias", type=int, default=0, choices=[0, 1], help="LayerNorm/linear biases")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--time-only", type=int, default=0, metavar="N",
                   help="time N training steps, no evaluation")
    a = p.parse_args()
    if a.dim % a.heads:
        p.error(f"--dim {a.dim} must be a multiple of --heads {a.heads}")
    for k in ("layers", "heads", "dim", "context", "batch", "threads"):
        if getattr(a, k) < 1:
            p.error(f"--{k} must be >= 1")
    if a.steps < 1 and not a.time_only:
        p.error("--steps must be >= 1")
    return a


if not CHECK:
    args = parse_args()
    # Before torch is imported: its OpenMP runtime reads these once at start-up.
    os.environ["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
else:
    import numpy as np

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402


# ---- mixlm's safetensors files (check mode) ------------------------------------------------------

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



# ---- nanoGPT's model.py (the CPU path of torch < 2.0: explicit masked softmax attention) ------

class LayerNorm(nn.Module):
    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_attn = nn.Linear(c.dim, 3 * c.dim, bias=bool(c.bias))
        self.c_proj = nn.Linear(c.dim, c.dim, bias=bool(c.bias))
        self.attn_dropout = nn.Dropout(c.dropout)
        self.resid_dropout = nn.Dropout(c.dropout)
        self.n_head, self.n_embd = c.heads, c.dim
        # check mode asks for the explicit masked softmax (c.flash False) whatever the torch.
        self.flash = getattr(c, "flash", True) and hasattr(F, "scaled_dot_product_attention")
        if not self.flash:
            # Not persistent: the state dict holds exactly the checkpoint's tensors.
            self.register_buffer("bias", torch.tril(torch.ones(c.context, c.context))
                                 .view(1, 1, c.context, c.context), persistent=False)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if self.flash:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None,
                                               dropout_p=self.attn_dropout.p if self.training else 0,
                                               is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            att = self.attn_dropout(att)
            y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc = nn.Linear(c.dim, 4 * c.dim, bias=bool(c.bias))
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2's GELU, as mixlm
        self.c_proj = nn.Linear(4 * c.dim, c.dim, bias=bool(c.bias))
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = LayerNorm(c.dim, c.bias)
        self.attn = CausalSelfAttention(c)
        self.ln_2 = LayerNorm(c.dim, c.bias)
        self.mlp = MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, c, vocab_size):
        super().__init__()
        self.block_size = c.context
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, c.dim),
            wpe=nn.Embedding(c.context, c.dim),
            drop=nn.Dropout(c.dropout),
            h=nn.ModuleList([Block(c) for _ in range(c.layers)]),
            ln_f=LayerNorm(c.dim, c.bias),
        ))
        self.lm_head = nn.Linear(c.dim, vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.layers))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        B, T = idx.size()
        pos = torch.arange(0, T, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss

    def configure_optimizers(self, weight_decay, learning_rate, betas):
        params = [p for p in self.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]
        nodecay = [p for p in params if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": weight_decay},
                  {"params": nodecay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas)


# ---- check mode: the model on mixlm's checkpoint and batch, in float64 ---------------------------

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

    c = argparse.Namespace(layers=cfg["n_layer"], heads=cfg["n_head"], dim=cfg["n_embd"],
                           context=cfg["block_size"], bias=bool(cfg["bias"]), dropout=0.0, flash=False)
    model = GPT(c, cfg["vocab_size"]).double()
    model.eval()  # no dropout module does anything (p = 0 anyway)
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


# ---- nanoGPT's train.py ---------------------------------------------------------------------------

def train_main():
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with open(args.data, "r", encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n = int(0.9 * len(data))
    train_data, val_data = data[:n], data[n:]
    if len(val_data) <= args.context + 1:
        sys.exit(f"{args.data}: validation split ({len(val_data)} chars) shorter than --context {args.context}")

    def get_batch(split):
        d = train_data if split == "train" else val_data
        ix = torch.randint(len(d) - args.context, (args.batch,))
        x = torch.stack([d[i:i + args.context] for i in ix])
        y = torch.stack([d[i + 1:i + 1 + args.context] for i in ix])
        return x, y

    model = GPT(args, len(chars))
    n_params = sum(p.numel() for p in model.parameters()) - model.transformer.wpe.weight.numel()
    optimizer = model.configure_optimizers(args.weight_decay, args.lr, (0.9, args.beta2))

    @torch.no_grad()
    def estimate_loss():
        out = {}
        model.eval()
        for split in ("train", "val"):
            losses = torch.zeros(args.eval_batches)
            for k in range(args.eval_batches):
                X, Y = get_batch(split)
                _, loss = model(X, Y)
                losses[k] = loss.item()
            out[split] = losses.mean().item()
        model.train()
        return out

    def get_lr(it):
        # warmup linear, then cosine from lr to min_lr at the last step (lr_decay_iters = steps)
        if it < args.warmup:
            return args.lr * (it + 1) / (args.warmup + 1)
        if it > args.steps:
            return args.min_lr
        decay_ratio = (it - args.warmup) / max(1, args.steps - args.warmup)
        coeff = 0.5 * (1.0 + math.cos(math.pi * min(1.0, decay_ratio)))
        return args.min_lr + coeff * (args.lr - args.min_lr)

    print(f"# nanogpt.py: torch {torch.__version__}, {args.threads} threads, vocab {len(chars)}, "
          f"{n_params / 1e6:.3f}M params (non-embedding count as nanoGPT), "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}", flush=True)
    steps = args.time_only if args.time_only else args.steps
    times, last = [], {}
    t_start = time.perf_counter()
    for it in range(steps):
        if not args.time_only and args.eval_every and it % args.eval_every == 0 and it > 0:
            last = estimate_loss()
            print(f"eval step {it} train {last['train']:.4f} val {last['val']:.4f}", flush=True)
        lr = get_lr(it)
        for g in optimizer.param_groups:
            g["lr"] = lr
        t0 = time.perf_counter()
        X, Y = get_batch("train")
        _, loss = model(X, Y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip != 0.0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        lossf = loss.item()
        dt = (time.perf_counter() - t0) * 1000
        times.append(dt)
        if it % args.log_every == 0 or it == steps - 1:
            print(f"step {it} loss {lossf:.4f} ms/step {dt:.1f} lr {lr:.2e}", flush=True)
    wall = time.perf_counter() - t_start
    full_val = None
    if not args.time_only:
        last = estimate_loss()
        print(f"eval step {steps} train {last['train']:.4f} val {last['val']:.4f}", flush=True)
        # The same full pass `mixlm eval` makes: non-overlapping windows of context over the
        # validation split, window k = val[k*T : k*T+T+1], every target scored once.
        model.eval()
        T = args.context
        nwin = (len(val_data) - 1) // T
        tot, cnt = 0.0, 0
        with torch.no_grad():
            for k0 in range(0, nwin, 64):
                ks = range(k0, min(nwin, k0 + 64))
                X = torch.stack([val_data[k * T:k * T + T] for k in ks])
                Y = torch.stack([val_data[k * T + 1:k * T + T + 1] for k in ks])
                logits, _ = model(X, Y)
                l = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), Y.reshape(-1),
                                                      reduction="sum")
                tot += l.item()
                cnt += Y.numel()
        full_val = tot / cnt
        print(f"full-pass val loss {full_val:.4f} over {cnt} tokens", flush=True)
    med = statistics.median(times)
    result = {
        "val_loss": last.get("val") if not args.time_only else None,
        "full_val_loss": full_val,
        "train_loss": last.get("train") if not args.time_only else None,
        "ms_per_step_median": round(med, 3),
        "steps": steps,
        "tokens_per_s": round(args.batch * args.context / (med / 1000.0), 1),
        "wall_s": round(wall, 2),
        "params": n_params,
        "threads": args.threads,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "torch": torch.__version__,
        "config": {k: getattr(args, k) for k in ("layers", "heads", "dim", "context", "batch", "lr",
                                                   "min_lr", "warmup", "beta2", "weight_decay",
                                                   "grad_clip", "bias", "dropout", "seed")},
    }
    print(json.dumps(result), flush=True)


def check_main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    rc = 0
    for d in sys.argv[2:]:
        print(f"{d}:")
        rc |= check_dir(d)
    return rc



if __name__ == "__main__":
    sys.exit(check_main() if CHECK else train_main())
