#!/usr/bin/env python3
"""mpi_model.py — a model of data-parallel training (train/dist.h) on larger clusters, from
figures measured on one node: per-step compute time, the gradient bytes every step all-reduces,
and a ring all-reduce, 2(N-1)/N x bytes / bandwidth + 2(N-1) x latency per bucket, at 10, 25 and
100 Gb/s for 2..64 nodes. Prints the predicted scaling efficiency (compute / step time) without
overlap and with the overlap mixlm does (buckets of layers start while backward still runs; the
last bucket, the embeddings wte+wpe, only after it). Not a measurement: a model, and says so.

Usage: bench/mpi_model.py [--latency-us 30] [--backward-frac 0.667] [--measured NAME=PARAMS,EMB,MS,GFLOP,LAYERS]
Defaults: measured on the 2-core AMD EPYC Zen 3 (AVX2) node, 1 process x 2 threads per node
(bench/RESULTS.md, 2026-12-02); the 124M model's compute is its FLOPs at the small shape's rate.
"""
import argparse

# name: (parameters, of which the last bucket (wte + wpe + ln_f), ms per step on one node,
#        GFLOP per step, what a step is) — measured by bench/mpi_speed.sh and mixlm train's
# summary (GFLOP from model_flops_per_token). Replace with your own node's figures.
MEASURED = {
    "baby": (809_024, 16_768, 59.7, 0.0, 4, "4L 4H 128, T 64, B 12 (char)"),
    "small": (10_745_088, 123_648, 1502.0, 0.0, 6, "6L 6H 384, T 256, B 8 (char)"),
}


def gpt2_124m():
    """GPT-2 small (12L 12H 768, T 1024, vocab 50257, tied head): parameters and FLOPs per step at B 8."""
    L, C, T, V, B = 12, 768, 1024, 50257, 8
    per_layer = 12 * C * C + 13 * C  # c_attn, c_proj, c_fc, c_proj (+ biases and LN gains)
    emb = V * C + T * C + 2 * C
    params = L * per_layer + emb
    matmul = L * 12 * C * C + V * C  # weights used as matmuls per token (the head tied to wte)
    flops_tok = 6 * matmul + 12 * L * T * C  # + dense attention's QK^T and AV, forward + backward
    return params, emb, flops_tok * B * T / 1e9, L, f"12L 12H 768, T {T}, B {B}, vocab {V}"


def ring_s(nbytes, n, gbps, latency_s, buckets):
    """Ring all-reduce: each node sends and receives 2(N-1)/N of the bytes; 2(N-1) steps per bucket."""
    if n < 2:
        return 0.0
    return 2 * (n - 1) / n * nbytes / (gbps * 1e9 / 8) + 2 * (n - 1) * latency_s * buckets


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency-us", type=float, default=30.0, help="per message hop (TCP ~30, RDMA ~2)")
    ap.add_argument("--backward-frac", type=float, default=2 / 3, help="share of a step's compute that is backward")
    ap.add_argument("--measured", action="append", default=[], metavar="NAME=PARAMS,EMB,MS,GFLOP,LAYERS",
                    help="a measured model: parameters, last-bucket parameters, ms/step, GFLOP/step, layers")
    a = ap.parse_args()
    models = dict(MEASURED)
    for m in a.measured:
        name, vals = m.split("=", 1)
        p, e, ms, gf, nl = vals.split(",")
        models[name] = (int(p), int(e), float(ms), float(gf), int(nl), "given")
    # The 124M model's compute at the rate the small shape reached (GFLOP/s), when it is known.
    sms, sgf = models["small"][2], models["small"][3]
    p124, e124, gf124, l124, what124 = gpt2_124m()
    rate = sgf / (sms / 1e3) if sgf > 0 else 100.0  # GFLOP/s of one node
    models["gpt2-124M"] = (p124, e124, gf124 / rate * 1e3, gf124, l124, what124 + f" (compute at {rate:.0f} GFLOP/s)")
    lat = a.latency_us * 1e-6
    print("Predicted data-parallel scaling efficiency = compute / (compute + communication not hidden)")
    print(f"ring all-reduce of fp32 gradients, {a.latency_us:g} us per hop, backward {a.backward_frac:.0%} of compute;")
    print("'overlap': layer buckets travel during backward, the embedding bucket after it (train/dist.h)")
    for name, (params, emb, ms, gf, layers, what) in models.items():
        comp = ms / 1e3
        nbytes, ebytes = 4 * params, 4 * emb
        print(f"\n{name}: {params / 1e6:.2f}M params = {nbytes / 1e6:.1f} MB of gradients per step "
              f"(last bucket {ebytes / 1e6:.2f} MB); compute {ms:.1f} ms/step/node; {what}")
        print(f"{'nodes':>5} | " + " | ".join(f"{g:>3} Gb/s: comm ms, eff none/overlap" for g in (10, 25, 100)))
        for n in (2, 4, 8, 16, 32, 64):
            cells = []
            for g in (10, 25, 100):
                total = ring_s(nbytes, n, g, lat, layers + 2)
                last = ring_s(ebytes, n, g, lat, 1)
                exposed = last + max(0.0, (total - last) - a.backward_frac * comp)
                cells.append(f"{total * 1e3:9.1f} ms, {100 * comp / (comp + total):5.1f}% / {100 * comp / (comp + exposed):5.1f}%")
            print(f"{n:>5} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
