#!/usr/bin/env python3
"""mpi_model.py — a model of data-parallel training (train/dist.h) on larger clusters, from
figures measured on one node: per-step compute time, the gradient bytes every step all-reduces,
and a ring all-reduce, 2(N-1)/N x bytes / bandwidth + 2(N-1) x latency per bucket, at 10, 25 and
100 Gb/s for 2..64 nodes. Prints the predicted scaling efficiency (compute / step time) without
overlap and with the overlap mixlm does (buckets of layers start while backward still runs; the
last bucket, the embeddings wte+wpe, only after it). Not a measurement: a model, and says so.

Usage: bench/mpi_model.py [--latency-us 30] [--backward-frac 0.667] [--ms small=1502 --ms baby=59.7]
Defaults: measured on the 2-core AMD EPYC Zen 3 (AVX2) node, 1 process x 2 threads per node;
the 124M model's compute is its FLOPs at the rate the small shape reached.
"""
import argparse

def shape(L, C, T, V, B):
    """A GPT (nanoGPT's, no biases, tied head) of L layers, width C, context T, vocab V at batch B:
    (parameters, parameters of the last bucket: wte + wpe + ln_f, GFLOP per step, layers, text).
    FLOPs: 6 x the matmul weights per token + 12 L T C for dense attention (forward + backward)."""
    per_layer = 12 * C * C + 2 * C
    last = V * C + T * C + C
    params = L * per_layer + last
    flops_tok = 6 * (L * 12 * C * C + V * C) + 12 * L * T * C
    return params, last, flops_tok * B * T / 1e9, L, f"{L}L dim {C}, T {T}, B {B}, vocab {V}"


# Measured ms per optimizer step on one node = the 2-core AMD EPYC Zen 3 (AVX2), 1 process x 2
# threads, quiet machine (README "Against PyTorch", bench/train_speed.sh, 2026-12-01). Replace
# with your own node's figure (--ms NAME=MS).
MEASURED_MS = {"baby": 59.7, "small": 1502.0}
SHAPES = {
    "baby": shape(4, 128, 64, 65, 12),
    "small": shape(6, 384, 256, 65, 8),
    "gpt2-124M": shape(12, 768, 1024, 50257, 8),  # compute at the small shape's GFLOP/s
}


def ring_s(nbytes, n, gbps, latency_s, buckets):
    """Ring all-reduce: each node sends and receives 2(N-1)/N of the bytes; 2(N-1) steps per bucket."""
    if n < 2:
        return 0.0
    return 2 * (n - 1) / n * nbytes / (gbps * 1e9 / 8) + 2 * (n - 1) * latency_s * buckets


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency-us", type=float, default=30.0, help="per message hop (TCP ~30, RDMA ~2)")
    ap.add_argument("--backward-frac", type=float, default=2 / 3, help="share of a step's compute that is backward")
    ap.add_argument("--ms", action="append", default=[], metavar="NAME=MS", help="measured ms/step of baby or small")
    a = ap.parse_args()
    ms = dict(MEASURED_MS)
    for m in a.ms:
        name, v = m.split("=", 1)
        ms[name] = float(v)
    rate = SHAPES["small"][2] / (ms["small"] / 1e3)  # GFLOP/s one node reached on the small shape
    ms["gpt2-124M"] = SHAPES["gpt2-124M"][2] / rate * 1e3
    lat = a.latency_us * 1e-6
    print("Predicted data-parallel scaling efficiency = compute / (compute + communication not hidden)")
    print(f"ring all-reduce of fp32 gradients, {a.latency_us:g} us per hop, backward {a.backward_frac:.0%} of compute;")
    print("'overlap': layer buckets travel during backward, the embedding bucket after it (train/dist.h)")
    print(f"one node's rate on the small shape: {rate:.0f} GFLOP/s (the 124M model's compute assumes it)")
    for name, (params, last, gf, layers, what) in SHAPES.items():
        comp = ms[name] / 1e3
        nbytes, ebytes = 4 * params, 4 * last
        print(f"\n{name} ({what}): {params / 1e6:.2f}M params = {nbytes / 1e6:.1f} MB of gradients per step "
              f"(last bucket {ebytes / 1e6:.2f} MB); {gf:.1f} GFLOP, {ms[name]:.1f} ms per step per node")
        print(f"{'nodes':>5} | " + " | ".join(f"{g:>3} Gb/s: comm ms, eff none/overlap" for g in (10, 25, 100)))
        for n in (2, 4, 8, 16, 32, 64):
            cells = []
            for g in (10, 25, 100):
                total = ring_s(nbytes, n, g, lat, layers + 2)
                tail = ring_s(ebytes, n, g, lat, 1)
                exposed = tail + max(0.0, (total - tail) - a.backward_frac * comp)
                cells.append(f"{total * 1e3:9.1f} ms, {100 * comp / (comp + total):5.1f}% / {100 * comp / (comp + exposed):5.1f}%")
            print(f"{n:>5} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
