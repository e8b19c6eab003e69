#!/usr/bin/python3
"""bench/plastc_step.py -- time one meta-training step of plastc on the configurations of torch_step.py.

Prints the same `config=... median_ms=... min_ms=... peak_rss_mb=...` lines as torch_step.py, so that
bench/run.sh can put both side by side. Two ways to measure, the first that plastc supports:

 1. `plastc bench FILE --task TASK --steps N [--set k=v]...` (the per-step timing mode of the generated
    binary's runtime): its output must contain `median_ms=X` (and optionally `min_ms=Y`).
 2. `plastc train FILE --task TASK --steps N --val-trials 64 --test-trials 64 --quiet --out DIR`: the
    per-step times are the differences of the cumulative `seconds` of consecutive train rows of
    DIR/metrics.csv (millisecond resolution); the first step is a warm-up and not counted. The runtime's
    data generation is inside its step loop, so it is included (PyTorch's is not).
Peak RSS is ru_maxrss of the plastc process (wait4); with `bench`, an untimed call first fills the model
cache, so no compiler runs in the measured process (plastc execs the cached binary: the figure is the
binary's, or the front end's if larger). --threads/--extra pass flags to bench (--block, --bptt);
--val-trials adds forward-only trials/s; --compile times `plastc build` with both backends.

Model files: models/<dir>/<cell>_<rule>.plast with dir = cue_reward, copy, regression_linear; override with
PLASTC_MODEL_<TASK>_<CELL>_<RULE>=path, or the folder models/ with PLASTC_MODELS=dir. Task flags: --task <task> plus --task-opt k=v for the
configuration's options (copy n=5 m=40; regression K=20 fn=linear d=12).
Exit 77 when plastc cannot run a step (no plastc, no model file, or neither command).

  plastc_step.py [--steps N] [--plastc PATH] [--hidden H] CONFIG...
"""
import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_step import CONFIGS  # noqa: E402  (the config table only; torch is not imported)

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def model_file(task, cell, rule):
    env = os.environ.get(f"PLASTC_MODEL_{task}_{cell}_{rule}".upper())
    if env:
        return env
    folder = {"regression": "regression_linear"}.get(task, task)
    names = [f"{cell}_{rule}"] + ([f"{cell}_nonplastic", f"{cell}_static", cell] if rule == "none" else [])
    for n in names:
        p = os.path.join(os.environ.get("PLASTC_MODELS") or os.path.join(TOP, "models"), folder, n + ".plast")
        if os.path.exists(p):
            return p
    return None


def run_measured(cmd, cwd=None):
    """(exit status, peak RSS MiB, output) of a command."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd)
    out = p.stdout.read()
    _, st, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(st)
    return p.returncode, ru.ru_maxrss / 1024.0, out.decode(errors="replace")


def has_command(plastc, cmd):
    try:
        return subprocess.run([plastc, cmd, "--help"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0
    except OSError:
        return False


def compile_latency(plastc, f, sets, backend):
    """Seconds of `plastc build FILE --backend B` (DSL to binary), or None if it fails."""
    d = tempfile.mkdtemp(prefix="plastc-compile-")
    try:
        t0 = time.perf_counter()
        p = subprocess.run([plastc, "build", f, "-o", os.path.join(d, "bin"), "--backend", backend] + sets,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dt = time.perf_counter() - t0
        return dt if p.returncode == 0 else None
    finally:
        shutil.rmtree(d, ignore_errors=True)


def measure(plastc, name, steps, hidden, extra=(), val_trials=0, compile_=False):
    task, cell, rule, H, opts = CONFIGS[name]
    f = model_file(task, cell, rule)
    if f is None:
        return None, f"no model file models/{task}/{cell}_{rule}.plast"
    sets = ["--set", f"hidden={hidden or H}"]
    tname = os.environ.get(f"PLASTC_TASK_{task}".upper(), task)
    topts = {"regression": {"K": 20, "fn": "linear", "d": 12}}.get(task, opts)
    for k, v in topts.items():
        sets += ["--task-opt", f"{k}={v}"]
    if has_command(plastc, "bench"):
        res = {}
        if compile_:
            # sets without the task options (build takes only --set)
            bsets = ["--set", f"hidden={hidden or H}"]
            for backend in ("c", "llvm"):
                res["compile_" + backend + "_s"] = compile_latency(plastc, f, bsets, backend)
        # one untimed call first, so the model cache holds the binary and no compiler runs in the timed one
        run_measured([plastc, "bench", f, "--task", tname, "--steps", "1", "--warmup", "0"] + sets)
        cmd = [plastc, "bench", f, "--task", tname, "--steps", str(steps)] + sets + list(extra)
        if val_trials:
            cmd += ["--val-trials", str(val_trials)]
        rc, rss, out = run_measured(cmd)
        med = re.search(r"median_ms=([0-9.eE+-]+)", out)
        if rc != 0 or not med:
            return None, f"plastc bench failed (status {rc}): {out.strip()[-300:]}"
        res.update({"median_ms": float(med.group(1)), "peak_rss_mb": rss, "how": "plastc bench"})
        for k in ("min_ms", "cpu_ms", "val_trials_per_s"):
            m = re.search(k + r"=([0-9.eE+-]+)", out)
            if m:
                res[k] = float(m.group(1))
        res.setdefault("min_ms", res["median_ms"])
        # the binary's own peak RSS (the plastc driver execs it, so wait4's figure is the same process)
        m = re.search(r"peak_rss_mb=([0-9.eE+-]+)", out)
        if m:
            res["peak_rss_mb"] = max(rss, float(m.group(1)))
        m = re.search(r"block (\d+), bptt (\S+)", out)
        if m:
            res["scheme"] = f"block{m.group(1)}_{m.group(2).rstrip(',')}"
        return res, None
    if has_command(plastc, "train"):
        d = tempfile.mkdtemp(prefix="plastc-bench-")
        try:
            cmd = [plastc, "train", f, "--task", tname, "--seed", "0", "--val-trials", "64", "--test-trials", "64",
                   "--quiet", "--steps", str(steps + 1), "--out", os.path.join(d, "run")] + sets
            rc, rss, out = run_measured(cmd)
            rows = []
            if rc == 0:
                with open(os.path.join(d, "run", "metrics.csv")) as fh:
                    for r in csv.DictReader(fh):
                        if r.get("split") == "train":
                            rows.append((int(r["step"]), float(r["seconds"])))
        except (OSError, KeyError, ValueError) as e:
            return None, f"plastc train: unreadable metrics.csv: {e}"
        finally:
            shutil.rmtree(d, ignore_errors=True)
        if rc != 0:
            return None, f"plastc train failed (status {rc}): {out.strip()[-300:]}"
        rows.sort()
        dts = [(b[1] - a[1]) * 1e3 for a, b in zip(rows, rows[1:]) if b[0] == a[0] + 1]
        if not dts:
            return None, "plastc train: no consecutive train rows in metrics.csv"
        return {"median_ms": statistics.median(dts), "min_ms": min(dts), "peak_rss_mb": rss,
                "how": "plastc train metrics.csv"}, None
    return None, "plastc has neither a bench nor a train command"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("configs", nargs="+")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--threads", type=int, default=1, help="passed to bench (--threads N)")
    ap.add_argument("--extra", default="", help="more bench flags, e.g. '--block 1 --bptt store'")
    ap.add_argument("--val-trials", type=int, default=0, help="also time N forward-only trials")
    ap.add_argument("--compile", action="store_true", help="also time plastc build, both backends")
    ap.add_argument("--plastc", default=os.environ.get("PLASTC") or shutil.which("plastc") or "./plastc")
    a = ap.parse_args(argv)
    if not (os.path.isfile(a.plastc) and os.access(a.plastc, os.X_OK)):
        print(f"plastc_step.py: {a.plastc}: not an executable: skipped", file=sys.stderr)
        return 77
    status = 77
    for n in a.configs:
        if n not in CONFIGS:
            print(f"plastc_step.py: error: unknown configuration {n}", file=sys.stderr)
            return 1
        extra = ["--threads", str(a.threads)] + a.extra.split()
        r, why = measure(a.plastc, n, a.steps, a.hidden, extra, a.val_trials, a.compile)
        if r is None:
            print(f"plastc_step.py: {n}: {why}", file=sys.stderr)
            continue
        status = 0
        task, cell, rule, H, opts = CONFIGS[n]
        more = "".join(f" {k}={r[k]:.1f}" for k in ("cpu_ms", "val_trials_per_s") if r.get(k) is not None)
        more += "".join(f" {k}={r[k]:.2f}" for k in ("compile_c_s", "compile_llvm_s") if r.get(k) is not None)
        if r.get("scheme"):
            more += f" scheme={r['scheme']}"
        print(f"config={n} H={a.hidden or H} threads={a.threads} median_ms={r['median_ms']:.1f} "
              f"min_ms={r['min_ms']:.1f} peak_rss_mb={r['peak_rss_mb']:.0f}{more} steps={a.steps} "
              f"how={r['how'].replace(' ', '_')}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
