#!/usr/bin/python3
"""bench/floor.py -- lower bounds (floors) on one meta-training step from this machine's measured limits.

Reads the output of bench/machine.sh (triad GB/s and sgemm GFLOP/s at 1 and 2 threads) and prints, per
configuration of torch_step.py, two floors. The model of each is in docs/PERFORMANCE.md; in short:

 dense  -- the plastic state W~ (S floats per trial) is materialised at every step, stored for the backward
           (store-everything BPTT). Per trial and step the forward reads W~_t and writes W~_{t+1}; the
           backward reads W~_t and reads and writes the adjoint of W~: at least 5 S floats of DRAM traffic.
           bytes = 5 * 4 * S * B * T; floor = bytes / triad bandwidth. (~1 FLOP per byte: memory-bound.)
           The gradient rule adds 2 S_ih floats (S_ih = the cell's input-side plastic weight, [H, H] or
           [H, 4H]): its one-step inner gradient needs (W_ih + W~_ih)^T g of the step's own output error for
           the encoder's update, so the forward reads W~_ih once more after the output is known (the matvec
           that produces the output cannot have it yet), and the VJP reads it once more for that product's
           input adjoint, whose value the main adjoint pass over W~_ih needs first. bytes = (5 S + 2 S_ih) *
           4 * B * T for gradient-rule configurations (1.19x the Hebbian count at cue-reward sizes).
 hist   -- as dense, but the live W~ and its adjoint (B * S floats, 35 MB at cue-reward sizes) stay in the
           last-level cache: only the stored history goes to DRAM, written once and read once: 2 S floats.
 gemm   -- W~ kept in factored (rank-1 sum) form, so nothing of size S is streamed; what remains are the
           static-weight GEMMs of the whole batch: forward 2 B sum(in*out), backward twice that (input and
           weight gradients) = 6 B sum(in*out) FLOP per step (Hebbian; the gradient rule's inner backward and
           double backward add about as much again, reported as x2). floor = FLOP / sgemm rate (M = 64).
           This ignores the per-element alpha of the reference (W~ = alpha (.) sum_s c_s a_s b_s^T):
 fact   -- the factored form with per-element alpha: x^T (alpha (.) a_s b_s^T) = ((x (.) a_s) @ alpha) (.) b_s,
           one GEMM row per past step s < t, so step t costs t static-size GEMM rows per trial: forward
           2 B sum(in*out) T(T-1)/2, backward twice that (x2 again for the gradient rule).
 block  -- the dense scheme run one trial at a time (BIN bench --block 1): the same 5 S floats per trial
           and step, but from cache: floor = bytes / in-cache triad bandwidth (bench/cachebw.c). "L2": the
           best rate with a working set <= 1.5 MiB; "L3": the best rate at 3-12 MiB (the per-trial working
           set of the reference sizes -- state, adjoints, static weights and alpha -- is ~2-3 MiB).

  floor.py MACHINE_OUTPUT [CONFIG...]   (default: every configuration)
  floor.py --lines MACHINE_OUTPUT [CONFIG...]   one `floor config=C dense_1t_ms=X ...` line per configuration,
                                                for bench/run.sh -m (its floor table)
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_step import CONFIGS, task_shape  # noqa: E402


def layer_sizes(cell, I, H, O=6):
    """(in, out) of the four linears: encoder, h_fc, i_fc, head."""
    G = 4 * H if cell == "lstm" else H
    return [(I, H), (H, G), (H, G), (H, O)]


def parse_machine(text):
    bw, gf = {}, {}
    for m in re.finditer(r"threads=(\d+) triad_GBps=([0-9.]+)", text):
        bw[int(m.group(1))] = max(bw.get(int(m.group(1)), 0.0), float(m.group(2)))
    for m in re.finditer(r"threads=(\d+) M=64 N=K=(\d+) sgemm_GFLOPs=([0-9.]+)", text):
        if int(m.group(2)) in (256, 512):  # the shapes of H = 128..512 layers
            t = int(m.group(1))
            gf[t] = max(gf.get(t, 0.0), float(m.group(3)))
    return bw, gf


def parse_cache(text):
    """{threads: (best GB/s at <= 1536 KiB, best GB/s at 3072..12288 KiB)} from cachebw lines."""
    out = {}
    for m in re.finditer(r"threads=(\d+) kib=(\d+) triad_GBps=([0-9.]+)", text):
        t, k, g = int(m.group(1)), int(m.group(2)), float(m.group(3))
        l2, l3 = out.get(t, (0.0, 0.0))
        if k <= 1536:
            l2 = max(l2, g)
        elif k <= 12288:
            l3 = max(l3, g)
        out[t] = (l2, l3)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("machine", help="output of bench/machine.sh")
    ap.add_argument("configs", nargs="*")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lines", action="store_true", help="key=value lines for bench/run.sh")
    ap.add_argument("--hidden", type=int, default=0, help="override every hidden size (as run.sh -H)")
    a = ap.parse_args(argv)
    with open(a.machine) as f:
        text = f.read()
    bw, gf = parse_machine(text)
    cache = parse_cache(text)
    if 1 not in bw or 1 not in gf:
        print("floor.py: error: no triad/sgemm lines for 1 thread in the machine output", file=sys.stderr)
        return 1
    threads = sorted(set(bw) & set(gf))
    B = a.batch
    if a.lines:
        for n in a.configs or [c for c in CONFIGS if not c.endswith("-none")]:
            task, cell, rule, H, opts = CONFIGS[n]
            H = a.hidden or H
            T, I = task_shape(task, opts)
            sizes = layer_sizes(cell, I, H)
            S = sum(i * o for i, o in sizes) + (sum(o for _, o in sizes) if rule == "gradient" else 0)
            s_ih = sizes[2][0] * sizes[2][1] if rule == "gradient" else 0
            gbytes = (5 * S + 2 * s_ih) * 4 * B * T / 1e9
            print(f"floor config={n} " + " ".join(f"dense_{t}t_ms={gbytes / bw[t] * 1e3:.1f}" for t in threads) +
                  "".join(f" blkL3_{t}t_ms={gbytes / cache[t][1] * 1e3:.1f}" for t in threads
                          if t in cache and cache[t][1]))
        return 0
    print("machine: " + ", ".join(f"{t} thr: triad {bw[t]:.1f} GB/s, sgemm {gf[t]:.0f} GFLOP/s, balance "
                                  f"{gf[t] / bw[t]:.1f} FLOP/B" for t in threads))
    hdr = f"{'config':26} {'H':>4} {'T':>3} {'S floats':>9} {'GB/step':>8} " + " ".join(
        f"{'dense ' + str(t) + 't ms':>12}" for t in threads) + " " + " ".join(
        f"{'hist ' + str(t) + 't ms':>11}" for t in threads) + f" {'GFLOP':>6} " + " ".join(
        f"{'gemm ' + str(t) + 't ms':>11}" for t in threads) + " " + " ".join(
        f"{'fact ' + str(t) + 't ms':>11}" for t in threads) + " " + " ".join(
        f"{'blkL2 ' + str(t) + 't':>10} {'blkL3 ' + str(t) + 't':>10}" for t in threads if t in cache)
    print(hdr)
    for n in a.configs or [c for c in CONFIGS if not c.endswith("-none")]:
        task, cell, rule, H, opts = CONFIGS[n]
        T, I = task_shape(task, opts)
        sizes = layer_sizes(cell, I, H)
        S = sum(i * o for i, o in sizes) + (sum(o for _, o in sizes) if rule == "gradient" else 0)
        s_ih = sizes[2][0] * sizes[2][1] if rule == "gradient" else 0
        gbytes = (5 * S + 2 * s_ih) * 4 * B * T / 1e9
        flop = 6 * B * sum(i * o for i, o in sizes) * T * (2 if rule == "gradient" else 1) / 1e9
        fact = flop * (T - 1) / 2
        print(f"{n:26} {H:>4} {T:>3} {S:>9} {gbytes:>8.2f} " + " ".join(
            f"{gbytes / bw[t] * 1e3:>12.0f}" for t in threads) + " " + " ".join(
            f"{2 * 4 * S * B * T / 1e9 / bw[t] * 1e3:>11.0f}" for t in threads) + f" {flop:>6.2f} " + " ".join(
            f"{flop / gf[t] * 1e3:>11.1f}" for t in threads) + " " + " ".join(
            f"{fact / gf[t] * 1e3:>11.0f}" for t in threads) + " " + " ".join(
            f"{gbytes / cache[t][0] * 1e3 if cache[t][0] else 0:>10.0f} "
            f"{gbytes / cache[t][1] * 1e3 if cache[t][1] else 0:>10.0f}" for t in threads if t in cache))
    return 0


if __name__ == "__main__":
    sys.exit(main())
