#!/usr/bin/python3
"""bench/rss_probe.py -- resident memory of the PyTorch model step by step, and the bytes autograd saves.

Runs STEPS meta-training steps of one configuration (torch_step.py's names) and prints, after each
forward and each backward, the peak and current RSS; for the first trial also the total size of the
distinct storages autograd saved for the backward. Shows how glibc's heap keeps freed graphs resident
(compare with MALLOC_MMAP_THRESHOLD_=65536 in the environment).

  rss_probe.py [--steps 3] CONFIG
"""
import argparse
import os
import resource
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def rss_mib():
    with open("/proc/self/statm") as f:
        cur = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, cur


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args(argv)
    import torch
    import ref_model
    from torch_step import CONFIGS, task_shape
    torch.set_num_threads(1)
    task, cell, rule, H, opts = CONFIGS[a.config]
    T, I = task_shape(task, opts)
    P = {k: torch.tensor(v).requires_grad_(True) for k, v in ref_model.init_params(cell, rule, I, H).items()}
    model = ref_model.RefModel(P, rule)
    opt = torch.optim.AdamW(list(P.values()), lr=1e-3, weight_decay=0.0, amsgrad=True)
    for k in range(a.steps):
        b = ref_model.make_batch(task, 64, seed=k, **opts)
        x, target, mask = (torch.tensor(b[n]) for n in ("x", "target", "mask"))
        opt.zero_grad(set_to_none=True)
        saved = {}

        def pack(t):
            s = t.storage()
            saved[s.data_ptr()] = s.nbytes()
            return t
        if k == 0:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                loss = model.trial_loss(x, target, mask)
            print(f"saved for backward: {sum(saved.values()) / 2 ** 20:.0f} MiB")
        else:
            loss = model.trial_loss(x, target, mask)
        print("step %d after forward:  peak %.0f MiB, current %.0f MiB" % ((k + 1,) + rss_mib()))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(P.values()), 5.0)
        opt.step()
        print("step %d after backward: peak %.0f MiB, current %.0f MiB" % ((k + 1,) + rss_mib()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
