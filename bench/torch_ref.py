#!/usr/bin/python3
"""torch_ref.py — the PyTorch side of ScratchGrad's training benchmark.

Trains the same two models as bench/bench_train.c, with the same settings and
the same data path, and prints the same machine-readable RESULT line:

  mlp  784-100-10 ReLU, SGD lr 0.1
  cnn  SimpleConvNet: conv 30x5x5 (stride 1, no padding) - ReLU - max pool 2
       - affine 4320->100 - ReLU - affine 100->10, Adam lr 0.001
  both batch 100, softmax cross-entropy (mean over the batch), He-normal
       weights (std sqrt(2 / fan_in)), zero biases, one shuffled order per
       epoch drawn from a seeded generator.

Data: the Fashion-MNIST IDX .gz files (Debian's dataset-fashion-mnist) read
with gzip + numpy and kept as bytes; each batch is gathered and scaled to
[0, 1] floats inside the loop, as bench_train.c does.

Timing: seconds of the training loop of each epoch (batch gather, forward,
backward, update), evaluation excluded. Peak memory: ru_maxrss of the process
at the end of training (peak_mb; the test set is loaded only then) and at
exit (peak_total_mb). Evaluation runs 100 test images at a time.

Usage (Debian's torch lives in the system python, not a pyenv one):
  /usr/bin/python3 bench/torch_ref.py --model mlp --epochs 10 --threads 1
Last line:
  RESULT impl=torch model=mlp threads=1 epochs=10 sec_per_epoch=0.391
         sec_best=0.380 test_acc=0.8750 peak_mb=511.2 peak_total_mb=515.0
"""
import argparse
import gzip
import os
import resource
import struct
import sys
import time

import numpy as np

DATA_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """An IDX file (plain or .gz) as a numpy uint8 array of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic = struct.unpack(">I", raw[:4])[0]
    if magic >> 8 != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file (magic %08x)" % (path, magic))
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).copy()
    if data.size != int(np.prod(dims)):
        raise ValueError("%s: header declares %s but holds %d bytes" % (path, dims, data.size))
    return data.reshape(dims)


def load_split(data_dir, train):
    prefix = "train" if train else "t10k"
    def find(stem):
        for name in (stem, stem + ".gz"):
            p = os.path.join(data_dir, name)
            if os.path.exists(p):
                return p
        raise FileNotFoundError("%s: no %s[.gz]" % (data_dir, stem))
    images = read_idx(find(prefix + "-images-idx3-ubyte"))
    labels = read_idx(find(prefix + "-labels-idx1-ubyte"))
    return images, labels


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    ap.add_argument("--epochs", type=int, default=None,
                    help="default: 10 for mlp, 5 for cnn")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch intra-op threads (0 = torch's default)")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--train-limit", type=int, default=0,
                    help="use only the first N training images (0 = all)")
    ap.add_argument("--data", default=DATA_DIR)
    args = ap.parse_args()
    epochs = args.epochs if args.epochs is not None else (10 if args.model == "mlp" else 5)

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    threads = torch.get_num_threads()

    train_x, train_y = load_split(args.data, True)
    if args.train_limit > 0:
        train_x, train_y = train_x[:args.train_limit], train_y[:args.train_limit]
    flat = args.model == "mlp"
    # bytes stay bytes; a batch becomes floats in [0, 1] when it is used
    train_x = torch.from_numpy(np.ascontiguousarray(train_x))
    train_y = torch.from_numpy(train_y.astype(np.int64))
    n = train_x.shape[0]

    def batch_images(src, idx):
        x = src[idx].to(torch.float32).mul_(1.0 / 255.0)
        return x.view(len(idx), 784) if flat else x.view(len(idx), 1, 28, 28)

    def he(layer, fan_in):
        with torch.no_grad():
            layer.weight.normal_(0.0, (2.0 / fan_in) ** 0.5)
            layer.bias.zero_()
        return layer

    if args.model == "mlp":
        model = nn.Sequential(he(nn.Linear(784, 100), 784), nn.ReLU(),
                              he(nn.Linear(100, 10), 100))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
    else:
        model = nn.Sequential(he(nn.Conv2d(1, 30, 5), 25), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(),
                              he(nn.Linear(30 * 12 * 12, 100), 30 * 12 * 12), nn.ReLU(),
                              he(nn.Linear(100, 10), 100))
        opt = torch.optim.Adam(model.parameters(), lr=0.001)

    gen = torch.Generator().manual_seed(args.seed)
    times = []
    for epoch in range(epochs):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, args.batch):
            idx = order[start:start + args.batch]
            x = batch_images(train_x, idx)
            t = train_y[idx]
            loss = F.cross_entropy(model(x), t)
            opt.zero_grad(set_to_none=False)
            loss.backward()
            opt.step()
        dt = time.perf_counter() - t0
        times.append(dt)
        print("epoch %d  %.3f s  loss %.4f" % (epoch + 1, dt, loss.item()), flush=True)

    train_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    test_x, test_y = load_split(args.data, False)
    test_x = torch.from_numpy(np.ascontiguousarray(test_x))
    test_y = torch.from_numpy(test_y.astype(np.int64))
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, test_x.shape[0], 100):
            idx = torch.arange(start, min(start + 100, test_x.shape[0]))
            pred = model(batch_images(test_x, idx)).argmax(dim=1)
            correct += int((pred == test_y[idx]).sum())
    acc = correct / test_x.shape[0]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("RESULT impl=torch model=%s threads=%d epochs=%d sec_per_epoch=%.4f sec_best=%.4f "
          "test_acc=%.4f peak_mb=%.1f peak_total_mb=%.1f"
          % (args.model, threads, epochs, sum(times) / len(times), min(times), acc,
             train_peak_mb, peak_mb))
    return 0


if __name__ == "__main__":
    sys.exit(main())
