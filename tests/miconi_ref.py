#!/usr/bin/env python3
"""tests/miconi_ref.py -- an independent float64 reference of Miconi 2016's network (spec miconi-2016.md
1.2, written from the spec, not from the .plast files) used to check the gradients plastc computes.

    miconi_ref.py batch TASK SEED B OUT.st       write a batch (x [T,B,I], target [T,B,Oy], mask [T])
    miconi_ref.py check PARAMS.st BATCH.st GRAD.st [--alpha-abs] [--tol X]

`check` reads the model's parameters (plastc names: hid.w [in,out] = W^T, hid.alpha_w = A^T (or `a`, with
A = |a| for the alpha >= 0 variants), hid.b = b, out.w = V^T, out.b = c), the batch and plastc's gradient
file (`BIN grad`), and compares:
  1. plastc's loss and every gradient with central finite differences of the reference (float64);
  2. the spec's forward-mode recursion (section 2.1, with the correct factor 1 - y^2) for W and A with
     the finite differences;
and prints, for information, how far the original code's recursion (factor 1 - tanh(y)^2, spec 2.2)
is from the true gradient. Pure Python (no numpy): the networks are tiny.
Exit 0 if every comparison is within tolerance, 1 otherwise."""
import json
import math
import random
import struct
import sys


def st_read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    hdr = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in hdr.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        fmt = {"F32": "f", "F64": "d"}[e["dtype"]]
        cnt = (b - a) // struct.calcsize(fmt)
        out[name] = (list(struct.unpack("<%d%s" % (cnt, fmt), data[base + a:base + b])), e["shape"])
    return out


def st_write(path, tensors):
    hdr, blobs, off = {}, [], 0
    for name, (vals, shape) in tensors.items():
        blob = struct.pack("<%dd" % len(vals), *vals)
        hdr[name] = {"dtype": "F64", "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make_batch(task, seed, B):
    """Episodes with the structure of spec 3.1-3.3 (drawn with Python's RNG, not plastc's)."""
    rnd = random.Random(seed)
    pat = lambda n: [rnd.choice((-1.0, 1.0)) for _ in range(n)]
    if task == "completion":
        T, I, O = 2, 8, 8
        x = [[[0.0] * I for _ in range(B)] for _ in range(T)]
        y = [[[0.0] * O for _ in range(B)] for _ in range(T)]
        for b in range(B):
            p = pat(8)
            k = rnd.randrange(8)
            x[0][b] = p[:]
            x[1][b][k] = p[k]
            y[0][b] = p[:]
            y[1][b] = p[:]
        mask = [0.0, 1.0]
    else:
        T, I, O, h = 20, 10, 2, 10
        x = [[None] * B for _ in range(T)]
        y = [[None] * B for _ in range(T)]
        for b in range(B):
            p1 = pat(8)
            p2 = pat(8)
            while p2 == p1:
                p2 = pat(8)
            for s in range(T):
                odd = s % 2
                sw = task == "reversal" and s >= h
                p = p2 if odd != sw else p1
                tgt = [0.0, 1.0] if odd else [1.0, 0.0]
                instr = s < 2 or (task == "reversal" and s in (h, h + 1))
                x[s][b] = (tgt if instr else [0.0, 0.0]) + p
                y[s][b] = tgt
        scored = [s >= 2 and not (task == "reversal" and s in (10, 11)) for s in range(T)]
        mask = [1.0 / 18 if sc else 0.0 for sc in scored]
    flat = lambda a: [v for step in a for row in step for v in row]
    return {"x": (flat(x), [T, B, I]), "target": (flat(y), [T, B, O]), "mask": (mask, [T])}


class Net:
    """Parameters in the spec's [out x in] layout."""

    def __init__(self, p, alpha_abs):
        wv, (I, N) = p["hid.w"]
        self.I, self.N = I, N
        self.W = [[wv[j * N + i] for j in range(I)] for i in range(N)]
        key = "a" if alpha_abs else "hid.alpha_w"
        av = p[key][0]
        self.araw = [[av[j * N + i] for j in range(I)] for i in range(N)]
        self.alpha_abs = alpha_abs
        self.b = p["hid.b"][0][:]
        vv, (N2, O) = p["out.w"]
        self.O = O
        self.V = [[vv[i * O + o] for i in range(N)] for o in range(O)]
        self.c = p["out.b"][0][:]

    def A(self):
        if self.alpha_abs:
            return [[abs(v) for v in row] for row in self.araw]
        return self.araw


def episode(net, xs, gamma):
    """Forward of one episode (spec 1.2): returns the list of (x, y, z, H_before) per step."""
    I, N, O = net.I, net.N, net.O
    A = net.A()
    H = [[0.0] * I for _ in range(N)]
    out = []
    for x in xs:
        a = [net.b[i] + sum((net.W[i][j] + A[i][j] * H[i][j]) * x[j] for j in range(I)) for i in range(N)]
        y = [math.tanh(v) for v in a]
        z = [net.c[o] + sum(net.V[o][i] * y[i] for i in range(N)) for o in range(O)]
        out.append((x, y, z, [row[:] for row in H]))
        H = [[gamma * H[i][j] + (1 - gamma) * y[i] * x[j] for j in range(I)] for i in range(N)]
    return out


def step_loss_and_gz(kind, z, t, w, B):
    if kind == "sse":
        return w * sum((zi - ti) ** 2 for zi, ti in zip(z, t)) / B, [w * 2 * (zi - ti) / B for zi, ti in zip(z, t)]
    m = max(z)
    e = [math.exp(v - m) for v in z]
    s = sum(e)
    p = [v / s for v in e]
    return w * -sum(ti * math.log(pi) for ti, pi in zip(t, p)) / B, [w * (pi - ti) / B for pi, ti in zip(p, t)]


def unpack(batch):
    xv, (T, B, I) = batch["x"]
    tv, (_, _, O) = batch["target"]
    xs = [[[xv[(s * B + b) * I + j] for j in range(I)] for s in range(T)] for b in range(B)]
    ts = [[[tv[(s * B + b) * O + k] for k in range(O)] for s in range(T)] for b in range(B)]
    return xs, ts, batch["mask"][0], B


def loss(net, batch, kind, gamma):
    xs, ts, mask, B = unpack(batch)
    L = 0.0
    for b in range(B):
        for s, (x, y, z, H) in enumerate(episode(net, xs[b], gamma)):
            if mask[s] != 0.0:
                L += step_loss_and_gz(kind, z, ts[b][s], mask[s], B)[0]
    return L


def rtrl(net, batch, kind, gamma, buggy):
    """Spec 2.1: dy_i(t)/dtheta_ij = phi'(t) [direct_ij(t) + sum_k A_ik x_k(t) S_ik,j(t-1)],
    S_ik,j(t) = gamma S_ik,j(t-1) + (1 - gamma) x_k(t) dy_i(t)/dtheta_ij; direct = x_j H_ij (A), x_j (W).
    buggy: phi' = 1 - tanh(y)^2 as in the original code. Returns dE/dW, dE/dA in [out x in]."""
    xs, ts, mask, B = unpack(batch)
    I, N = net.I, net.N
    A = net.A()
    gW = [[0.0] * I for _ in range(N)]
    gA = [[0.0] * I for _ in range(N)]
    for b in range(B):
        steps = episode(net, xs[b], gamma)
        for which, G in (("W", gW), ("A", gA)):
            for i in range(N):
                for j in range(I):
                    S = [0.0] * I
                    for s, (x, y, z, H) in enumerate(steps):
                        yi = math.tanh(y[i]) if buggy else y[i]
                        phi = 1 - yi * yi
                        direct = x[j] * (H[i][j] if which == "A" else 1.0)
                        dy = phi * (direct + sum(A[i][k] * x[k] * S[k] for k in range(I)))
                        if mask[s] != 0.0:
                            gz = step_loss_and_gz(kind, z, ts[b][s], mask[s], B)[1]
                            gy = sum(net.V[o][i] * gz[o] for o in range(net.O))
                            G[i][j] += gy * dy
                        S = [gamma * S[k] + (1 - gamma) * x[k] * dy for k in range(I)]
    return gW, gA


def rel(a, b):
    num = math.sqrt(sum((u - v) ** 2 for u, v in zip(a, b)))
    den = math.sqrt(sum(v * v for v in b))
    return num / den if den > 0 else num


def check(argv):
    params_path, batch_path, grad_path = argv[:3]
    alpha_abs = "--alpha-abs" in argv
    tol = float(argv[argv.index("--tol") + 1]) if "--tol" in argv else 2e-3
    gamma = float(argv[argv.index("--gamma") + 1]) if "--gamma" in argv else None
    p = st_read(params_path)
    batch = st_read(batch_path)
    g = st_read(grad_path)
    kind = "sse" if batch["target"][1][2] == batch["x"][1][2] else "ce"  # completion: Oy = I
    if gamma is None:
        gamma = 0.5 if kind == "sse" else 0.98
    net = Net(p, alpha_abs)
    L = loss(net, batch, kind, gamma)
    ok = True
    lp = g["loss"][0][0]
    print("# loss: plastc %.9g reference %.9g" % (lp, L))
    if abs(lp - L) > tol * max(1.0, abs(L)):
        print("FAIL: loss differs")
        ok = False
    # Finite differences on the plastc-named tensors, in plastc's [in, out] layout.
    eps = 1e-6
    fds = {}
    for name in ("hid.w", "hid.b", "a" if alpha_abs else "hid.alpha_w", "out.w", "out.b"):
        vals, shape = p[name]
        fd = []
        for e in range(len(vals)):
            old = vals[e]
            vals[e] = old + eps
            lp_ = loss(Net(p, alpha_abs), batch, kind, gamma)
            vals[e] = old - eps
            lm_ = loss(Net(p, alpha_abs), batch, kind, gamma)
            vals[e] = old
            fd.append((lp_ - lm_) / (2 * eps))
        fds[name] = fd
        fixed = name == "out.w" and kind == "sse"
        r = rel(g[name][0], fd)
        print("# %-12s plastc vs finite differences: rel err %.2e%s" % (name, r, " (fixed tensor)" if fixed else ""))
        if r > tol:
            print("FAIL: gradient of %s" % name)
            ok = False
    if not alpha_abs:
        N, I = net.N, net.I
        to_in_out = lambda M: [M[i][j] for j in range(I) for i in range(N)]
        gW, gA = rtrl(net, batch, kind, gamma, False)
        for name, G in (("hid.w", gW), ("hid.alpha_w", gA)):
            r = rel(to_in_out(G), fds[name])
            print("# %-12s spec 2.1 recursion vs finite differences: rel err %.2e" % (name, r))
            if r > 1e-4:
                print("FAIL: the spec's recursion for %s" % name)
                ok = False
        bW, bA = rtrl(net, batch, kind, gamma, True)
        for name, G in (("hid.w", bW), ("hid.alpha_w", bA)):
            r = rel(to_in_out(G), fds[name])
            tv = fds[name]
            bv = to_in_out(G)
            cos = sum(u * v for u, v in zip(tv, bv)) / (math.sqrt(sum(u * u for u in tv)) * math.sqrt(sum(v * v for v in bv)) or 1.0)
            print("# %-12s original code's recursion (1 - tanh(y)^2) vs true gradient: rel err %.2e, cosine %.4f" % (name, r, cos))
    return 0 if ok else 1


def main():
    if len(sys.argv) >= 6 and sys.argv[1] == "batch":
        st_write(sys.argv[5], make_batch(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        return 0
    if len(sys.argv) >= 5 and sys.argv[1] == "check":
        return check(sys.argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
