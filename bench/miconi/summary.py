#!/usr/bin/env python3
"""bench/miconi/summary.py -- median / inter-quartile range of the per-episode error over seeds, for the
runs of bench/miconi/run.sh (Miconi 2016 section 4; docs/miconi.md).

    summary.py OUTDIR MODEL [--plot FILE.png]

Reads OUTDIR/MODEL/s*/metrics.csv (split train: the error of episode k before its update; split frozen:
the last 500 episodes, no update) and prints (markdown):
  - per checkpoint episode: median [q25, q75] over seeds of each seed's 100-episode running mean;
  - the first episode at which the median running mean falls below each threshold;
  - the frozen phase: median [q25, q75] of the seeds' mean error, and how many seeds are below 0.01/0.1;
  - with the seeds' final parameters: the sign of the pattern->hidden plasticity coefficients (one-shot
    and reversal) or the diagonal / off-diagonal split of A (completion), spec 4.3.
Writes OUTDIR/MODEL/curve.csv (episode, median, q25, q75 of the raw per-episode error, and of the
100-episode running mean) and, with --plot, a gnuplot PNG of the median and the IQR band.
Pure Python; quantiles interpolate linearly (numpy's default)."""
import glob
import json
import math
import os
import struct
import subprocess
import sys


def quantile(v, q):
    s = sorted(v)
    if not s:
        return float("nan")
    x = q * (len(s) - 1)
    lo = int(math.floor(x))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (x - lo)


def read_run(path):
    train, frozen = {}, {}
    with open(path) as f:
        next(f)
        for line in f:
            p = line.strip().split(",")
            if len(p) < 3:
                continue
            if p[1] == "train":
                train[int(p[0])] = float(p[2])
            elif p[1] == "frozen":
                frozen[int(p[0])] = float(p[2])
    ep = [train[k] for k in sorted(train)] + [frozen[k] for k in sorted(frozen)]
    return ep, len(train)


def running(v, w=100):
    out, s = [], 0.0
    for i, x in enumerate(v):
        s += x
        if i >= w:
            s -= v[i - w]
        out.append(s / min(i + 1, w))
    return out


def st_read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    hdr = json.loads(data[8:8 + n])
    out = {}
    for name, e in hdr.items():
        if name == "__metadata__" or e["dtype"] != "F32":
            continue
        a, b = e["data_offsets"]
        out[name] = (list(struct.unpack("<%df" % ((b - a) // 4), data[8 + n + a:8 + n + b])), e["shape"])
    return out


def structure(model, runs_dir, frozen_mean):
    """Spec 4.3 from the final parameters (checkpoint.safetensors) of each seed. One-shot and reversal:
    the dominant hidden unit is the one with the largest sum of |V| (the other is often nearly unused);
    its 8 pattern->hidden coefficients are tallied against whether the seed solved the task (frozen
    error < 0.1)."""
    lines = []
    diag, off, dom = [], [], []
    tally = {True: [0, 0], False: [0, 0]}  # solved -> [all negative, seeds]
    for ck in sorted(glob.glob(os.path.join(runs_dir, "s*", "checkpoint.safetensors"))):
        seed = os.path.basename(os.path.dirname(ck))
        p = st_read(ck)
        if "hid.alpha_w" in p:
            A, (I, N) = p["hid.alpha_w"]
        else:
            a, (I, N) = p["a"]
            A = [abs(v) for v in a]
        if model.startswith("completion"):
            for j in range(I):
                for i in range(N):
                    (diag if i == j else off).append(A[j * N + i])
            continue
        V, (_, O) = p["out.w"]
        i = max(range(N), key=lambda u: sum(abs(V[u * O + o]) for o in range(O)))
        pat = [A[j * N + i] for j in range(2, I)]
        dom.append(sum(pat) / len(pat))
        solved = frozen_mean.get(seed, 1.0) < 0.1
        tally[solved][0] += all(v < 0 for v in pat)
        tally[solved][1] += 1
    if diag:
        lines.append("- A (final, all seeds): diagonal median %.2f [%.2f, %.2f], off-diagonal median %.2f [%.2f, %.2f]"
                     % (quantile(diag, .5), quantile(diag, .25), quantile(diag, .75),
                        quantile(off, .5), quantile(off, .25), quantile(off, .75)))
    if dom:
        lines.append("- dominant hidden unit (largest |V|): all 8 pattern coefficients < 0 in %d of %d solved seeds "
                     "and %d of %d unsolved seeds; its mean pattern coefficient: median %.2f [%.2f, %.2f]"
                     % (tally[True][0], tally[True][1], tally[False][0], tally[False][1], quantile(dom, .5),
                        quantile(dom, .25), quantile(dom, .75)))
    return lines


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    out, model = sys.argv[1], sys.argv[2]
    plot = sys.argv[sys.argv.index("--plot") + 1] if "--plot" in sys.argv else None
    d = os.path.join(out, model)
    runs = sorted(glob.glob(os.path.join(d, "s*", "metrics.csv")))
    if not runs:
        print("summary.py: no runs in %s" % d, file=sys.stderr)
        return 1
    eps, n_train, frozen_mean = [], None, {}
    for r in runs:
        e, nt = read_run(r)
        eps.append(e)
        n_train = nt
        if len(e) > nt:
            frozen_mean[os.path.basename(os.path.dirname(r))] = sum(e[nt:]) / (len(e) - nt)
    n = min(len(e) for e in eps)
    eps = [e[:n] for e in eps]
    runm = [running(e) for e in eps]
    with open(os.path.join(d, "curve.csv"), "w") as f:
        f.write("episode,median,q25,q75,run100_median,run100_q25,run100_q75\n")
        for k in range(n):
            col = [e[k] for e in eps]
            rc = [r[k] for r in runm]
            f.write("%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n" % (k + 1, quantile(col, .5), quantile(col, .25),
                    quantile(col, .75), quantile(rc, .5), quantile(rc, .25), quantile(rc, .75)))
    print("### %s: %d seeds, %d episodes (%d trained + %d frozen)\n" % (model, len(eps), n, n_train, n - n_train))
    print("| episode | median | q25 | q75 |  (100-episode running mean of the per-episode error)")
    print("|---|---|---|---|")
    marks = [m for m in (1, 100, 250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000, 10000) if m <= n_train]
    if n_train not in marks:
        marks.append(n_train)
    for m in marks:
        rc = [r[m - 1] for r in runm]
        print("| %d | %.4f | %.4f | %.4f |" % (m, quantile(rc, .5), quantile(rc, .25), quantile(rc, .75)))
    print()
    med = [quantile([r[k] for r in runm], .5) for k in range(n_train)]
    for th in (1.0, 0.3, 0.1, 0.01):
        first = next((k + 1 for k, v in enumerate(med) if v < th), None)
        print("- median running mean < %g first at episode %s" % (th, first if first else "never"))
    if n > n_train:
        fm = [sum(e[n_train:]) / (n - n_train) for e in eps]
        print("- frozen phase (last %d episodes, no update): median %.4f [q25 %.4f, q75 %.4f]; seeds < 0.01: %d, < 0.1: %d of %d"
              % (n - n_train, quantile(fm, .5), quantile(fm, .25), quantile(fm, .75), sum(v < 0.01 for v in fm),
                 sum(v < 0.1 for v in fm), len(fm)))
    for line in structure(model, d, frozen_mean):
        print(line)
    print()
    if plot:
        ymax = 10 if model.startswith("completion") else 1
        script = ("set terminal png size 800,500; set output '%s'; set datafile separator ','; "
                  "set xlabel 'episode'; set ylabel 'error'; set yrange [0:%d]; set key top right; "
                  "set title '%s: median and IQR over %d seeds (per episode)'; "
                  "plot '%s' every ::1 using 1:3:4 with filledcurves lc rgb '#bbccee' title 'IQR', "
                  "'' every ::1 using 1:2 with lines lc rgb '#223388' title 'median'"
                  % (plot, ymax, model.replace("_", " "), len(eps), os.path.join(d, "curve.csv")))
        subprocess.run(["gnuplot", "-e", script], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
