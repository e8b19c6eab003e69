#!/usr/bin/python3
"""bench/compare_grads.py -- compare two gradient files (plastc grad vs bench/ref_model.py grad).

Both hold `loss` and one gradient per parameter name. Each tensor's error is max|a - b| divided by
max(max|b|, 1e-6 * the largest |b| of any tensor) (so an all-zero reference tensor is compared against the
overall scale); the loss is compared relatively. Prints one line per tensor and exits 1 if any error
exceeds --rtol (--rtol-f32 for a tensor stored as float32 in the first file, whose rounding alone is
~6e-8), if the name sets differ, or if shapes differ.

  compare_grads.py PLASTC.safetensors REFERENCE.safetensors [--rtol 1e-9] [--rtol-f32 1e-5]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("got")
    ap.add_argument("want")
    ap.add_argument("--rtol", type=float, default=1e-9)
    ap.add_argument("--rtol-f32", type=float, default=1e-5)
    a = ap.parse_args(argv)
    try:
        got, _ = stio.load(a.got)
        want, _ = stio.load(a.want)
    except (OSError, ValueError) as e:
        print(f"compare_grads.py: error: {e}", file=sys.stderr)
        return 1
    bad = 0
    if set(got) != set(want):
        print(f"names differ: only in {a.got}: {sorted(set(got) - set(want))}; "
              f"only in {a.want}: {sorted(set(want) - set(got))}")
        bad += 1
    if "loss" not in want or "loss" not in got:
        print("no `loss` tensor")
        return 1
    lg, lw = float(np.asarray(got["loss"], np.float64).reshape(-1)[0]), float(
        np.asarray(want["loss"], np.float64).reshape(-1)[0])
    ltol = a.rtol_f32 if any(v.dtype == np.float32 for k, v in got.items() if k != "loss") else a.rtol
    lerr = abs(lg - lw) / max(abs(lw), 1e-300)
    print(f"{'ok  ' if lerr <= ltol else 'FAIL'} loss {lg:.17g} vs {lw:.17g} rel {lerr:.2e}")
    bad += lerr > ltol
    names = [n for n in want if n != "loss" and n in got]
    top = max([float(np.max(np.abs(want[n]))) for n in names if want[n].size] + [1e-300])
    for n in names:
        tol = a.rtol_f32 if got[n].dtype == np.float32 else a.rtol
        g, w = np.asarray(got[n], np.float64), np.asarray(want[n], np.float64)
        if g.shape != w.shape:
            print(f"FAIL {n}: shape {list(g.shape)} vs {list(w.shape)}")
            bad += 1
            continue
        scale = max(float(np.max(np.abs(w))) if w.size else 0.0, 1e-6 * top)
        err = float(np.max(np.abs(g - w))) / scale if w.size else 0.0
        ok = err <= tol and np.all(np.isfinite(g))
        print(f"{'ok  ' if ok else 'FAIL'} {n} {list(w.shape)} {got[n].dtype} max|ref| {scale:.3e} err {err:.2e}")
        bad += not ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
