#!/usr/bin/python3
"""interop.py — ScratchGrad's weights give PyTorch ScratchGrad's predictions.

For each of the book's networks — mlp (TwoLayerNet, also with batch norm),
cnn (SimpleConvNet), deep (DeepConvNet with batch norm and dropout) — on a
slice of Fashion-MNIST (300 training images, the first 100 test images,
written as IDX files into a temporary directory):
  1. demos/train trains it for one epoch, saves the weights (--save) and
     writes its logits for the 100 test images (--predictions);
  2. tools/sg2torch.py to-torch converts the weights to a state_dict;
  3. the torch.nn network of sg2torch.book_model loads it (strict) and, in
     eval mode, computes the logits of the same images scaled to [0, 1]:
     every predicted class must be ScratchGrad's, and every logit within
     1e-4 (1 + max |logit|) of ScratchGrad's — float32 sums in another
     order (OpenBLAS vs PyTorch's kernels) differ by a few units in the
     last place, 1e-7 relative per operation, far below that; a mistake in
     the mapping (an untransposed W, a swapped gamma) moves them by O(1);
  4. to-sg converts the state_dict back: the file must be byte for byte
     the trainer's (the same names, shapes, values and layout).
A checkpoint (--checkpoint) converts to the same state_dict as the weights
file of the same run, its optimizer tensors left out.
Arguments: the trainer binary, the source root.
"""
import gzip
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

train, root = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
sys.path.insert(0, os.path.join(root, "tools"))
import sg2torch  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def read_idx(path, n):
    """The first n items of a gzipped IDX file (only those are inflated)."""
    with gzip.open(path, "rb") as f:
        head = f.read(4)
        ndim = head[3]
        dims = list(struct.unpack(">" + "I" * ndim, f.read(4 * ndim)))
        dims[0] = min(n, dims[0])
        raw = f.read(int(np.prod(dims)))
    return np.frombuffer(raw, dtype=np.uint8).reshape(dims)


def write_idx(path, a):
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, a.ndim))
        f.write(struct.pack(">" + "I" * a.ndim, *a.shape))
        f.write(np.ascontiguousarray(a, dtype=np.uint8).tobytes())


def run(args, cwd):
    p = subprocess.run([train] + args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        print(p.stdout)
        raise SystemExit(f"interop: the trainer failed: {' '.join(args)}")
    return p.stdout


def tool(name, standalone, *args):
    """tools/sg2torch.py with args: as a program the first time (its
    command line, imports and exit status), then in this process (each
    python3 that imports torch costs seconds)."""
    if standalone:
        p = subprocess.run([sys.executable, os.path.join(root, "tools", "sg2torch.py"), *args],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        check(p.returncode == 0, f"{name}: sg2torch.py {args[0]}: {p.stdout.strip()}")
    else:
        check(sg2torch.main(["sg2torch.py", *args]) == 0, f"{name}: sg2torch.main({args[0]})")


def main():
    if not os.path.isdir(DATA):
        print(f"interop: skipped: no Fashion-MNIST in {DATA} (apt-get install dataset-fashion-mnist)")
        return 77
    torch.set_num_threads(1)
    keep = tempfile.TemporaryDirectory(prefix="sg-interop-")
    tmp = keep.name
    first = True
    sets = os.path.join(tmp, "slice")
    os.mkdir(sets)
    n_train, n_test = 300, 100
    for kind, n in (("train", n_train), ("t10k", n_test)):
        write_idx(os.path.join(sets, f"{kind}-images-idx3-ubyte"), read_idx(f"{DATA}/{kind}-images-idx3-ubyte.gz", n))
        write_idx(os.path.join(sets, f"{kind}-labels-idx1-ubyte"), read_idx(f"{DATA}/{kind}-labels-idx1-ubyte.gz", n))
    images = torch.from_numpy(read_idx(f"{DATA}/t10k-images-idx3-ubyte.gz", n_test).astype(np.float32) / 255.0)
    images = images.reshape(n_test, 1, 28, 28)

    for model, extra in (("mlp", []), ("mlp", ["--bn"]), ("cnn", []), ("deep", ["--bn"])):
        name = model + ("-bn" if extra else "")
        w, pt, back, pred = (os.path.join(tmp, name + ext) for ext in (".safetensors", ".pt", "-back.safetensors", ".csv"))
        ck = os.path.join(tmp, name + "-ck.safetensors")
        t0 = time.time()
        run(["--dataset", sets, "--model", model, *extra, "--epochs", "1", "--batch", "50", "--threads", "1",
             "--quiet", "--save", w, "--predictions", pred, "--checkpoint", ck,
             "--log", os.path.join(tmp, "log.csv"), "--plot", os.path.join(tmp, "p.png")], tmp)
        t1 = time.time()
        rows = np.loadtxt(pred, delimiter=",", skiprows=1)
        sg_pred, sg_logits = rows[:, 2].astype(int), rows[:, 3:]
        check(rows.shape == (n_test, 13), f"{name}: the trainer wrote {n_test} rows of predictions")

        tool(name, first, "to-torch", w, pt)
        state = torch.load(pt)
        net = sg2torch.book_model(state)
        net.load_state_dict(state)  # strict: every name and shape
        net.eval()
        with torch.no_grad():
            logits = net(images).numpy().astype(np.float64)
        pred_torch = logits.argmax(axis=1)
        tol = 1e-4 * (1 + np.abs(sg_logits).max())
        diff = np.abs(logits - sg_logits).max()
        check(diff <= tol, f"{name}: PyTorch's logits within {tol:.2g} of ScratchGrad's (max difference {diff:.2g})")
        # a disagreement is allowed only where ScratchGrad's two best logits are closer than the tolerance
        top2 = np.sort(sg_logits, axis=1)[:, -2:]
        unclear = (top2[:, 1] - top2[:, 0]) < tol
        same = (pred_torch == sg_pred) | unclear
        check(same.all(), f"{name}: PyTorch predicts ScratchGrad's class for all {n_test} images "
                          f"({int((pred_torch == sg_pred).sum())} equal, {int(unclear.sum())} too close to call)")
        acc = float((pred_torch == rows[:, 1].astype(int)).mean())
        print(f"     {name}: accuracy on the {n_test} images {100 * acc:.0f}% in both; "
              f"trained in {t1 - t0:.1f} s, compared in {time.time() - t1:.1f} s")

        tool(name, first, "to-sg", pt, back)
        first = False
        with open(w, "rb") as a, open(back, "rb") as b:
            check(a.read() == b.read(), f"{name}: back from PyTorch, the file is byte for byte the trainer's")

        ck_state = sg2torch.to_torch(sg2torch.load_safetensors(ck)[0])
        check(list(ck_state) == list(state) and all(torch.equal(ck_state[k], state[k]) for k in state),
              f"{name}: the checkpoint converts to the same state_dict (optimizer tensors left out)")

    if failures:
        print(f"interop: {len(failures)} checks failed")
        return 1
    print("interop: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
