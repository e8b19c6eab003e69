#!/usr/bin/python3
"""bench/torch_step.py -- time one meta-training step of the reference model in PyTorch (1 thread).

A step is what train.py's loop does per batch: forward over a whole trial (with the plasticity update at
every step), backward (BPTT; for the gradient rule through the inner gradient too), clip_grad_norm_(5) and
an AdamW(amsgrad=True, lr 1e-3, weight_decay 0) step. Batch 64, float32, torch.set_num_threads(1). Data
generation is excluded: the batches are generated before the clock starts. The model is bench/ref_model.py
(written from the spec; it materialises per-sample effective weights and uses baddbmm as the reference does).

Each configuration runs in its own subprocess so that its peak RSS (ru_maxrss from wait4) is its own.

  torch_step.py --list                      the configuration names
  torch_step.py [--steps N] [--warmup W] CONFIG...   time these (default: the 4 plastic cue-reward ones)
  torch_step.py --one CONFIG ...            (internal) run one configuration in this process
Output: one line per configuration, `config=... median_ms=... min_ms=... peak_rss_mb=...`.
"""
import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time

# No torch (nor ref_model, which imports it) at module level: the parent that spawns the measured
# children must stay small, since a child's ru_maxrss also counts the pages it shared with its parent at fork.

# name -> (task, cell, rule, H, task options). Hidden sizes are the paper's (A.3): plastic RNN 256, plastic
# LSTM 128, non-plastic x1.5. T and I follow from the task.
CONFIGS = {}
for _task, _opts in (("cue_reward", {}), ("copy", {"n": 5, "m": 40}), ("regression", {"K": 20, "d": 12})):
    for _cell, _hp, _hn in (("rnn", 256, 384), ("lstm", 128, 192)):
        for _rule in ("none", "hebbian", "gradient"):
            CONFIGS[f"{_task}-{_cell}-{_rule}"] = (_task, _cell, _rule, _hn if _rule == "none" else _hp, _opts)
DEFAULT = ["cue_reward-rnn-hebbian", "cue_reward-rnn-gradient", "cue_reward-lstm-hebbian",
           "cue_reward-lstm-gradient"]


def _mem_total_gb():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2 ** 20
    except OSError:
        pass
    return 0.0


def task_shape(task, opts):
    """(T, I) of a task configuration."""
    if task == "cue_reward":
        return 20, 16
    if task == "copy":
        return 2 * opts["n"] + opts["m"], 3
    return opts["K"] + 20, opts["d"] + 2


def run_one(name, steps, warmup, batch, seed, hidden=None, max_mem_gb=0.0):
    if max_mem_gb > 0:  # an allocation beyond this fails in PyTorch instead of waking the OOM killer
        lim = int(max_mem_gb * 2 ** 30)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch
    import ref_model
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    task, cell, rule, H, opts = CONFIGS[name]
    H = hidden or H
    T, I = task_shape(task, opts)
    P = {k: torch.tensor(v).requires_grad_(True)
         for k, v in ref_model.init_params(cell, rule, I, H, 6, seed=seed).items()}
    model = ref_model.RefModel(P, rule)
    params = list(P.values())
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=True)
    batches = []
    for k in range(warmup + steps):
        b = ref_model.make_batch(task, batch, seed=seed * 1000 + k, **opts)
        batches.append((torch.tensor(b["x"]), torch.tensor(b["target"]), torch.tensor(b["mask"])))
    times = []
    losses = []
    for k, (x, target, mask) in enumerate(batches):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model.trial_loss(x, target, mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        dt = time.perf_counter() - t0
        losses.append(float(loss.detach()))
        if k >= warmup:
            times.append(dt * 1e3)
    return {"config": name, "H": H, "T": T, "I": I, "B": batch, "steps": steps, "warmup": warmup,
            "median_ms": statistics.median(times), "min_ms": min(times), "first_loss": losses[0],
            "last_loss": losses[-1]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("configs", nargs="*", help="configuration names (see --list)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per configuration (3)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps before (1)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, help="override the hidden size (for quick tests)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print JSON lines")
    ap.add_argument("--max-mem-gb", type=float, default=0.75 * _mem_total_gb(),
                    help="address-space limit per configuration (default: 3/4 of RAM); 0 = none")
    ap.add_argument("--malloc", choices=("default", "lean"), default="default",
                    help="glibc malloc: default, or lean = MALLOC_MMAP_THRESHOLD_=65536 (every large tensor "
                         "is mmapped and returned at free: about 1/3 of the peak RSS, but slower)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.list:
        for n, (task, cell, rule, H, opts) in CONFIGS.items():
            T, I = task_shape(task, opts)
            print(f"{n} H={H} T={T} I={I}")
        return 0
    if importlib.util.find_spec("torch") is None:
        print("torch_step.py: python3 torch is not installed: skipped", file=sys.stderr)
        return 77
    if a.one:
        try:
            r = run_one(a.one, a.steps, a.warmup, a.batch, a.seed, a.hidden, a.max_mem_gb)
        except ImportError as e:
            print(f"torch_step.py: {e}: skipped", file=sys.stderr)
            return 77
        except RuntimeError as e:  # PyTorch's allocation failure under the limit
            print(f"torch_step.py: {a.one}: {str(e).splitlines()[0]}", file=sys.stderr)
            return 3
        print(json.dumps(r))
        return 0
    names = a.configs or DEFAULT
    for n in names:
        if n not in CONFIGS:
            print(f"torch_step.py: error: unknown configuration {n} (see --list)", file=sys.stderr)
            return 1
    status = 0
    for n in names:
        cmd = [sys.executable, os.path.abspath(__file__), "--one", n, "--steps", str(a.steps), "--warmup",
               str(a.warmup), "--batch", str(a.batch), "--seed", str(a.seed), "--max-mem-gb", str(a.max_mem_gb)]
        if a.hidden:
            cmd += ["--hidden", str(a.hidden)]
        env = dict(os.environ)
        if a.malloc == "lean":
            env["MALLOC_MMAP_THRESHOLD_"] = "65536"
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env)
        out = p.stdout.read()
        _, st, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(st)
        if p.returncode == 77:
            return 77
        if p.returncode != 0:
            why = " (out of memory under --max-mem-gb)" if p.returncode == 3 else ""
            print(f"torch_step.py: {n}: exit status {p.returncode}{why}, peak RSS {ru.ru_maxrss / 1024:.0f} MiB",
                  file=sys.stderr)
            status = 1
            continue
        r = json.loads(out.decode().strip().splitlines()[-1])
        r["peak_rss_mb"] = ru.ru_maxrss / 1024.0  # Linux reports KiB
        r["malloc"] = a.malloc
        if a.json:
            print(json.dumps(r), flush=True)
        else:
            print(f"config={r['config']} H={r['H']} T={r['T']} B={r['B']} median_ms={r['median_ms']:.1f} "
                  f"min_ms={r['min_ms']:.1f} peak_rss_mb={r['peak_rss_mb']:.0f} steps={r['steps']} malloc={a.malloc}",
                  flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
