#!/usr/bin/python3
"""bench/ref_model.py -- an independent PyTorch implementation of the reference model of Duan et al. 2023.

Written from /work/shared/spec/reference-model.md (Part A), not from plastc's code, so that it can
cross-check `plastc grad`. It mirrors the reference code's semantics:

  * layers store W as [in, out]; a plastic layer computes out = b + x @ (W + W~) with a per-sample W~
    (torch.baddbmm, as PlasticLinear does);
  * encoder relu(b + x W) [I -> H]; cell: vanilla relu RNN or LSTM (gates i, f, g, o), two linears h_fc
    (w_hh, b_hh) and i_fc (w_ih, b_ih); head o = b + h W [H -> O] with no activation;
    y = o[:, :Oy], m = o[:, -1];
  * internal loss L = F.mse_loss(o * w_out, 0): the mean over batch AND outputs;
  * lr = eta0 * sigmoid(m) (reference: 0.1 * 2 * sigmoid(m)), wd = eta0 * sigmoid(m), the decay is not
    scaled by the max-norm factor; lr <- lr * min(1, max_norm / norm), norm over all plastic tensors of a
    sample (biases included), with a guard for norm == 0;
  * Hebbian: delta = pre (x) post (encoder: x -> x1; RNN: h_{t-1} / x1 -> new h; LSTM: h_{t-1} / x1 ->
    concat(sigma(i), sigma(f), tanh(g), sigma(o)); head: h -> o), biases not plastic;
  * gradient: delta = dL/dW~ by torch.autograd.grad(create_graph=True), one step (the previous state is not
    downstream of W~(t), so it is constant automatically), biases plastic;
  * W~ <- (1 - wd) W~ + lr * alpha (*) delta; W~ starts at 0, so do h and c;
  * non-plastic models: the same layers without plastic state (PyTorch's RNNCell / LSTMCell math).

Meta-loss of a batch (x [T,B,I], target [T,B,Oy], mask [T]): loss = sum_t mask[t] * mean_{b,k} (y - target)^2.

Commands (see --help of each):
  ref_model.py grad  --params P --batch B -o G --rule R      loss and gradient of every parameter
  ref_model.py init  --cell C --rule R --input I --hidden H -o P   reference initialisation
  ref_model.py batch --task T ... -o B                        a random batch (or a task's trials)
  ref_model.py selftest                                       internal consistency checks
"""
import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402

try:
    import torch
except ImportError:  # the callers test for torch and skip; say why if run directly
    torch = None

# Module order of the plastic tensors (the reference's state order): (layer, weight, bias).
LINEARS = (("enc", "w", "b"), ("cell", "w_hh", "b_hh"), ("cell", "w_ih", "b_ih"), ("head", "w", "b"))


def alpha_names(layer, tensor):
    """Candidate names of the plasticity coefficient of LAYER.TENSOR, most likely first."""
    names = [f"{layer}.alpha_{tensor}"]
    if tensor.startswith("w_"):
        names.append(f"{layer}.alpha_{tensor[2:]}")
    if tensor == "b":
        names.append(f"{layer}.beta")
    elif tensor.startswith("b_"):
        names.append(f"{layer}.beta_{tensor[2:]}")
    return names


class RefModel:
    """The reference model over a dict of parameter tensors (names as plastc's, layouts [in, out])."""

    def __init__(self, params, rule, out_dim=1, eta0=0.2, max_norm=1.0, cell=None):
        if rule not in ("none", "hebbian", "gradient"):
            raise ValueError(f"unknown rule {rule!r}")
        for n in ("enc.w", "enc.b", "cell.w_hh", "cell.b_hh", "cell.w_ih", "cell.b_ih", "head.w", "head.b"):
            if n not in params:
                raise ValueError(f"parameter {n} missing (have: {', '.join(sorted(params))})")
        self.P = params
        self.rule = rule
        self.I, self.H = params["enc.w"].shape
        h, g = params["cell.w_hh"].shape
        inferred = "lstm" if g == 4 * h else "rnn"
        if cell is not None and cell != inferred:
            raise ValueError(f"--cell {cell} but cell.w_hh has shape {list(params['cell.w_hh'].shape)}")
        self.cell = inferred
        self.O = params["head.w"].shape[1]
        self.out_dim = out_dim
        self.eta0 = eta0
        self.max_norm = max_norm
        self.clip_events = [0, 0]  # (samples clipped, samples seen): lets tests see both branches ran
        # Plastic tensors: every weight whose alpha is present (rule != none); biases too for the gradient
        # rule (Hebbian biases keep b~ = 0 forever, so they carry no state here).
        self.plastic = []  # (state key, parameter name, alpha name)
        if rule != "none":
            for layer, w, b in LINEARS:
                aw = next((a for a in alpha_names(layer, w) if a in params), None)
                if aw is None:
                    continue
                self.plastic.append((f"{layer}.{w}", f"{layer}.{w}", aw))
                if rule == "gradient":
                    ab = next((a for a in alpha_names(layer, b) if a in params), None)
                    if ab is None:
                        raise ValueError(f"gradient rule: no plasticity coefficient for {layer}.{b}")
                    self.plastic.append((f"{layer}.{b}", f"{layer}.{b}", ab))
            if not self.plastic:
                raise ValueError(f"rule {rule} but no plasticity coefficients (alpha_*) in the parameters")
            if rule == "gradient" and "w_out" not in params:
                raise ValueError("gradient rule needs w_out")

    def zero_state(self, B, dtype, requires_grad):
        P = self.P
        h = torch.zeros(B, self.H, dtype=dtype)
        c = torch.zeros(B, self.H, dtype=dtype) if self.cell == "lstm" else None
        wt = {}
        for key, pname, _ in self.plastic:
            wt[key] = torch.zeros((B,) + tuple(P[pname].shape), dtype=dtype, requires_grad=requires_grad)
        return h, c, wt

    def _lin(self, x, layer, w, b, wt):
        """b + x @ W with the per-sample plastic parts of W and b when they exist (baddbmm, as PlasticLinear)."""
        W = self.P[f"{layer}.{w}"]
        bias = self.P[f"{layer}.{b}"]
        kw, kb = f"{layer}.{w}", f"{layer}.{b}"
        if kb in wt:
            bias = bias + wt[kb]  # [B, out]
        if kw in wt:
            Weff = W + wt[kw]  # [B, in, out]
            return torch.baddbmm(bias.unsqueeze(-2), x.unsqueeze(1), Weff).squeeze(1)
        return torch.addmm(bias, x, W) if bias.dim() == 1 else bias + x @ W

    def step(self, x, h, c, wt):
        """One time step. Returns (o, h, c, wt_next)."""
        x1 = torch.relu(self._lin(x, "enc", "w", "b", wt))
        a = self._lin(h, "cell", "w_hh", "b_hh", wt) + self._lin(x1, "cell", "w_ih", "b_ih", wt)
        if self.cell == "rnn":
            hn = torch.relu(a)
            cn = None
            post = hn
        else:
            i, f, g, og = a.chunk(4, dim=-1)
            si, sf, tg, so = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(og)
            cn = sf * c + si * tg
            hn = so * torch.tanh(cn)
            post = torch.cat((si, sf, tg, so), dim=-1)
        o = self._lin(hn, "head", "w", "b", wt)
        if not self.plastic:
            return o, hn, cn, wt

        if self.rule == "hebbian":
            pairs = {"enc.w": (x, x1), "cell.w_hh": (h, post), "cell.w_ih": (x1, post), "head.w": (hn, o)}
            delta = [torch.bmm(pairs[k][0].unsqueeze(2), pairs[k][1].unsqueeze(1)) for k, _, _ in self.plastic]
        else:
            w_out = self.P["w_out"]
            L = torch.mean((o * w_out) ** 2)  # F.mse_loss(o * w_out, zeros): mean over batch and outputs
            delta = torch.autograd.grad(L, [wt[k] for k, _, _ in self.plastic], create_graph=True)

        m = o[:, -1]
        lr = self.eta0 * torch.sigmoid(m)  # [B]
        wd = self.eta0 * torch.sigmoid(m)
        if self.max_norm is not None:
            sq = sum(d.pow(2).flatten(1).sum(1) for d in delta)
            clipped = sq > self.max_norm ** 2
            self.clip_events[0] += int(clipped.sum())
            self.clip_events[1] += clipped.numel()
            # Guard: a norm of 0 (never clipped) must not put sqrt'(0) = inf into the backward.
            norm = torch.sqrt(torch.where(clipped, sq, torch.ones_like(sq)))
            lr = torch.where(clipped, lr * self.max_norm / norm, lr)
        wt_next = {}
        for (key, _, aname), d in zip(self.plastic, delta):
            shape = (-1,) + (1,) * (d.dim() - 1)
            wt_next[key] = (1 - wd).view(shape) * wt[key] + lr.view(shape) * self.P[aname] * d
        return o, hn, cn, wt_next

    def trial_loss(self, x, target, mask):
        """sum_t mask[t] * MSE(y_t, target_t) over a trial; x [T,B,I], target [T,B,Oy], mask [T]."""
        T, B, _ = x.shape
        h, c, wt = self.zero_state(B, x.dtype, requires_grad=(self.rule == "gradient"))
        loss = x.new_zeros(())
        for t in range(T):
            o, h, c, wt = self.step(x[t], h, c, wt)
            y = o[:, :target.shape[2]]
            loss = loss + mask[t] * torch.mean((y - target[t]) ** 2)
        return loss


def to_torch(arrays, dtype, requires_grad=False):
    out = {}
    for k, v in arrays.items():
        t = torch.tensor(np.asarray(v, dtype=np.float64)).to(dtype)
        if requires_grad:
            t.requires_grad_(True)
        out[k] = t
    return out


def loss_and_grad(params_np, batch_np, rule, dtype, eta0=0.2, max_norm=1.0, cell=None, stats=False):
    """(loss, {name: gradient}) as numpy float64, gradients for every parameter (0 when unused)."""
    P = to_torch(params_np, dtype, requires_grad=True)
    x = torch.tensor(np.asarray(batch_np["x"], np.float64)).to(dtype)
    target = torch.tensor(np.asarray(batch_np["target"], np.float64)).to(dtype)
    T = x.shape[0]
    mask = batch_np.get("mask")
    mask = torch.full((T,), 1.0 / T, dtype=dtype) if mask is None else torch.tensor(
        np.asarray(mask, np.float64)).to(dtype)
    if x.dim() != 3 or target.dim() != 3 or target.shape[:2] != x.shape[:2] or mask.shape != (T,):
        raise ValueError(f"batch shapes: x {list(x.shape)}, target {list(target.shape)}, mask {list(mask.shape)}")
    model = RefModel(P, rule, out_dim=target.shape[2], eta0=eta0, max_norm=max_norm, cell=cell)
    if x.shape[2] != model.I:
        raise ValueError(f"batch x has {x.shape[2]} inputs, enc.w expects {model.I}")
    loss = model.trial_loss(x, target, mask)
    names = list(P)
    grads = torch.autograd.grad(loss, [P[n] for n in names], allow_unused=True)
    out = {}
    for n, g in zip(names, grads):
        out[n] = np.zeros(P[n].shape) if g is None else g.detach().double().numpy()
    if stats:
        return float(loss.detach()), out, model.clip_events
    return float(loss.detach()), out


# ---------------------------------------------------------------------------------------------------------
# Initialisation (A.2) and batches (A.5)

def init_params(cell, rule, I, H, O=6, seed=0, dtype=np.float32):
    """Reference initialisation: fan-out U(+-scale/sqrt(out)); alpha U(-1, 1); w_out = 1."""
    rng = np.random.default_rng(seed)
    G = 4 * H if cell == "lstm" else H
    k_cell = 1 / math.sqrt(H)  # rnn: 1/sqrt(H); lstm: 2/sqrt(4H) = 1/sqrt(H)
    shapes = [("enc.w", (I, H), 1 / math.sqrt(H)), ("enc.b", (H,), 1 / math.sqrt(H)),
              ("cell.w_hh", (H, G), k_cell), ("cell.b_hh", (G,), k_cell),
              ("cell.w_ih", (H, G), k_cell), ("cell.b_ih", (G,), k_cell),
              ("head.w", (H, O), 1 / math.sqrt(O)), ("head.b", (O,), 1 / math.sqrt(O))]
    P = {n: rng.uniform(-k, k, s).astype(dtype) for n, s, k in shapes}
    if rule != "none":
        for layer, w, b in LINEARS:
            P[f"{layer}.alpha_{w}"] = rng.uniform(-1, 1, P[f"{layer}.{w}"].shape).astype(dtype)
            P[f"{layer}.alpha_{b}"] = rng.uniform(-1, 1, P[f"{layer}.{b}"].shape).astype(dtype)
    P["w_out"] = np.ones(O, dtype)
    return P


def make_batch(task, B, seed=0, T=20, I=16, out_dim=1, n=5, m=40, K=20, d=12):
    """Returns dict x [T,B,I], target [T,B,Oy], mask [T] (float32) for a task of A.5, or a random batch."""
    rng = np.random.default_rng(seed)
    if task == "random":
        x = rng.uniform(-1, 1, (T, B, I))
        target = rng.uniform(-1, 1, (T, B, out_dim))
        mask = 2.0 * np.arange(1, T + 1) / (T * (T + 1))  # unequal weights (sum 1) exercise the mask
    elif task == "cue_reward":
        T, dc, ncls = 20, 14, 5
        x = np.zeros((T, B, dc + 2))
        target = np.zeros((T, B, 1))
        for b in range(B):
            cues = rng.uniform(0, 1, (ncls, dc))
            rew = rng.uniform(-1, 1, ncls)
            for t in range(T):
                i = rng.integers(ncls)
                x[t, b, :dc] = cues[i] + rng.normal(0, 0.1) * np.ones(dc)
                x[t, b, dc] = rew[i] if t < T // 2 else 0.0
                x[t, b, dc + 1] = 0.0 if t < T // 2 else 1.0
                target[t, b, 0] = rew[i]
        mask = np.full(T, 1.0 / T)
    elif task == "copy":
        T = 2 * n + m
        x = np.zeros((T, B, 3))
        target = np.zeros((T, B, 1))
        r = rng.uniform(-1, 1, (B, n))
        x[:n, :, 0] = r.T
        x[:n, :, 1] = 1
        x[n + m:, :, 2] = 1
        target[n + m:, :, 0] = r.T
        mask = np.zeros(T)
        mask[n + m:] = 1.0 / n
    elif task == "regression":  # linear f, d variables, K shots + 20 queries
        T = K + 20
        x = np.zeros((T, B, d + 2))
        target = np.zeros((T, B, 1))
        for b in range(B):
            kf = 1 / math.sqrt(d)
            wf, bf = rng.uniform(-kf, kf, d), rng.uniform(-kf, kf)
            v = rng.uniform(-1, 1, (T, d))
            val = v @ wf + bf
            val = (val - val.mean()) / val.std(ddof=1)
            x[:, b, :d] = v
            x[:K, b, d] = val[:K] + rng.normal(0, 0.1, K)
            x[:K, b, d + 1] = 1
            target[:, b, 0] = val
        mask = np.full(T, 1.0 / T)
    else:
        raise ValueError(f"unknown task {task!r}")
    f32 = np.float32
    return {"x": x.astype(f32), "target": target.astype(f32), "mask": mask.astype(f32)}


# ---------------------------------------------------------------------------------------------------------
# Self-test: checks this implementation against the spec's independent statements.

def _selftest():
    torch.manual_seed(0)
    dt = torch.float64
    fails = 0

    def check(name, ok, detail=""):
        nonlocal fails
        print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}")
        fails += 0 if ok else 1

    # 1. Parameter counts of A.3 (cue-reward, reference init; they include alpha/beta and w_out).
    for cell, rule, H, want in (("rnn", "hebbian", 256, 274962), ("rnn", "none", 384, 304524),
                                ("lstm", "gradient", 128, 270098), ("lstm", "none", 192, 300876)):
        n = sum(v.size for v in init_params(cell, rule, 16, H).values())
        check(f"param count {cell} {rule} H={H}", n == want, f"{n} vs {want}")

    # 2. The gradient rule's delta equals the spec's closed form for the vanilla RNN (A.1, step 4).
    B, I, H, O = 3, 5, 7, 6
    Pn = init_params("rnn", "gradient", I, H, O, seed=1, dtype=np.float64)
    Pn["w_out"] = np.random.default_rng(2).uniform(0.5, 1.5, O)
    P = to_torch(Pn, dt)
    mdl = RefModel(P, "gradient")
    x = torch.rand(B, I, dtype=dt) * 2 - 1
    hprev = torch.rand(B, H, dtype=dt)
    _, _, wt = mdl.zero_state(B, dt, True)
    wt = {k: (0.1 * torch.randn(v.shape, dtype=dt)).requires_grad_(True) for k, v in wt.items()}
    o, hn, _, _ = mdl.step(x, hprev, None, wt)
    L = torch.mean((o * P["w_out"]) ** 2)
    keys = [k for k, _, _ in mdl.plastic]
    auto = dict(zip(keys, torch.autograd.grad(L, [wt[k] for k in keys])))
    eff = {k: P[k] + wt[k] for k in ("enc.w", "cell.w_hh", "cell.w_ih", "head.w")}
    effb = {k: P[k] + wt[k] for k in ("enc.b", "cell.b_hh", "cell.b_ih", "head.b")}
    z = torch.einsum("bi,bih->bh", x, eff["enc.w"]) + effb["enc.b"]
    x1 = torch.relu(z)
    a = torch.einsum("bi,bih->bh", hprev, eff["cell.w_hh"]) + effb["cell.b_hh"] + \
        torch.einsum("bi,bih->bh", x1, eff["cell.w_ih"]) + effb["cell.b_ih"]
    g_o = (2.0 / (B * O)) * P["w_out"] ** 2 * o
    g_a = torch.einsum("bho,bo->bh", eff["head.w"], g_o) * (a > 0)
    g_z = torch.einsum("bhk,bk->bh", eff["cell.w_ih"], g_a) * (z > 0)
    closed = {"head.w": torch.einsum("bh,bo->bho", hn, g_o), "head.b": g_o,
              "cell.w_hh": torch.einsum("bi,bh->bih", hprev, g_a), "cell.b_hh": g_a,
              "cell.w_ih": torch.einsum("bi,bh->bih", x1, g_a), "cell.b_ih": g_a,
              "enc.w": torch.einsum("bi,bh->bih", x, g_z), "enc.b": g_z}
    err = max(float((auto[k] - closed[k]).abs().max()) for k in keys)
    check("gradient rule delta == closed form (RNN)", err < 1e-14, f"max abs err {err:.2e}")

    # 3. 1/(B*O) factor: a sample's delta at batch B is 1/B of its delta alone.
    wt1 = {k: v[:1].detach().clone().requires_grad_(True) for k, v in wt.items()}
    o1, _, _, _ = mdl.step(x[:1], hprev[:1], None, wt1)
    g1 = torch.autograd.grad(torch.mean((o1 * P["w_out"]) ** 2), [wt1[k] for k in keys])
    ratio = float(torch.linalg.vector_norm(auto["head.w"][0]) / torch.linalg.vector_norm(g1[keys.index("head.w")][0]))
    check("per-sample delta norm ratio B=3 vs B=1 is 1/3", abs(ratio - 1 / 3) < 1e-12, f"{ratio:.15f}")

    # 4. Meta-gradients by central finite differences (float64), every model kind, a few entries each.
    rng = np.random.default_rng(3)
    for cell, rule, mn in [(c, r, n) for c in ("rnn", "lstm") for r in ("none", "hebbian", "gradient")
                           for n in ((1.0,) if r == "none" else (1.0, 0.02))]:
        Pn = init_params(cell, rule, 4, 5, 6, seed=4, dtype=np.float64)
        if rule != "none":  # larger alphas so the plastic terms matter
            for k in Pn:
                if ".alpha" in k:
                    Pn[k] = Pn[k] * 3
        bt = {k: v.astype(np.float64) for k, v in make_batch("random", 3, seed=5, T=6, I=4).items()}
        loss, grads, clips = loss_and_grad(Pn, bt, rule, dt, max_norm=mn, stats=True)
        worst = 0.0
        for name in Pn:
            flat = Pn[name].reshape(-1)
            for j in rng.choice(flat.size, size=min(3, flat.size), replace=False):
                eps = 1e-6
                old = flat[j]
                flat[j] = old + eps
                lp = _loss_only(Pn, bt, rule, mn)
                flat[j] = old - eps
                lm = _loss_only(Pn, bt, rule, mn)
                flat[j] = old
                fd = (lp - lm) / (2 * eps)
                an = grads[name].reshape(-1)[j]
                # eps = 1e-6 on a loss of ~0.3 leaves ~1e-10 of rounding in fd: an absolute floor.
                rel = abs(fd - an) / (1e-5 * abs(an) + 1e-9)
                if rel > 1:
                    print(f"     {name}[{j}] fd {fd:.10e} analytic {an:.10e}")
                worst = max(worst, rel)
        check(f"finite differences {cell} {rule} max_norm={mn}", worst <= 1,
              f"worst |fd-an|/(1e-5|an|+1e-9) {worst:.2f}, loss {loss:.6f}, clipped {clips[0]}/{clips[1]}")
        if rule == "hebbian":
            zb = all(not np.any(grads[k]) for k in grads if ".alpha_b" in k)
            zw = not np.any(grads["w_out"])
            check(f"hebbian {cell}: bias alphas and w_out get zero gradient", zb and zw)

    # 5. Zero-norm guard: a zero input and zero state give a finite gradient.
    Pn = init_params("rnn", "hebbian", 4, 5, 6, seed=6, dtype=np.float64)
    Pn["enc.b"][:] = -1.0  # x1 = 0 for x = 0, h = 0 at t = 0 -> every hebbian delta is 0
    bt = {"x": np.zeros((2, 2, 4)), "target": np.ones((2, 2, 1)), "mask": np.ones(2)}
    loss, grads = loss_and_grad(Pn, bt, "hebbian", dt)
    check("zero-norm guard keeps gradients finite", all(np.all(np.isfinite(g)) for g in grads.values()))
    print("selftest:", "FAILED" if fails else "passed")
    return 1 if fails else 0


def _loss_only(Pn, bt, rule, max_norm):
    with torch.enable_grad():
        P = to_torch(Pn, torch.float64)
        mdl = RefModel(P, rule, out_dim=bt["target"].shape[2], max_norm=max_norm)
        x = torch.tensor(bt["x"], dtype=torch.float64)
        return float(mdl.trial_loss(x, torch.tensor(bt["target"], dtype=torch.float64),
                                    torch.tensor(bt["mask"], dtype=torch.float64)).detach())


# ---------------------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grad", help="meta-loss of a batch and its gradient w.r.t. every parameter")
    g.add_argument("--params", required=True)
    g.add_argument("--batch", required=True)
    g.add_argument("-o", "--output", required=True)
    g.add_argument("--rule", choices=("none", "hebbian", "gradient"), required=True)
    g.add_argument("--cell", choices=("rnn", "lstm"), help="checked against cell.w_hh's shape")
    g.add_argument("--eta0", type=float, default=0.2, help="rate and decay = eta0 * sigmoid(m) (0.2)")
    g.add_argument("--max-norm", type=float, default=1.0, help="max-norm (1); <= 0 disables")
    g.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    i = sub.add_parser("init", help="write reference-initialised parameters")
    i.add_argument("--cell", choices=("rnn", "lstm"), required=True)
    i.add_argument("--rule", choices=("none", "hebbian", "gradient"), required=True)
    i.add_argument("--input", type=int, required=True)
    i.add_argument("--hidden", type=int, required=True)
    i.add_argument("--outputs", type=int, default=6)
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("-o", "--output", required=True)
    b = sub.add_parser("batch", help="write a batch file x, target, mask")
    b.add_argument("--task", choices=("random", "cue_reward", "copy", "regression"), default="random")
    b.add_argument("--batch-size", type=int, default=4)
    b.add_argument("--steps", type=int, default=5, help="T (random task)")
    b.add_argument("--input", type=int, default=16, help="I (random task)")
    b.add_argument("--out-dim", type=int, default=1)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("-o", "--output", required=True)
    sub.add_parser("selftest", help="check this implementation against the spec")
    a = ap.parse_args(argv)

    if a.cmd == "init":
        stio.save(a.output, init_params(a.cell, a.rule, a.input, a.hidden, a.outputs, a.seed))
        return 0
    if a.cmd == "batch":
        stio.save(a.output, make_batch(a.task, a.batch_size, a.seed, T=a.steps, I=a.input, out_dim=a.out_dim))
        return 0
    if torch is None:
        print("ref_model.py: error: python3 torch is not installed", file=sys.stderr)
        return 77
    torch.set_num_threads(1)
    if a.cmd == "selftest":
        return _selftest()
    try:
        params, _ = stio.load(a.params)
        batch, _ = stio.load(a.batch)
        dtype = torch.float64 if a.dtype == "float64" else torch.float32
        loss, grads = loss_and_grad(params, batch, a.rule, dtype, eta0=a.eta0,
                                    max_norm=a.max_norm if a.max_norm > 0 else None, cell=a.cell)
    except (OSError, ValueError, KeyError) as e:
        print(f"ref_model.py: error: {e}", file=sys.stderr)
        return 1
    out = {"loss": np.array(loss, dtype=np.float64)}
    out.update(grads)
    stio.save(a.output, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
