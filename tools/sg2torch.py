#!/usr/bin/python3
"""sg2torch.py — ScratchGrad weights <-> PyTorch state_dict.

ScratchGrad saves a model (sg_model_save, train --save) or a training
checkpoint (train --checkpoint) as safetensors. This script converts the
model's tensors to a PyTorch state_dict (torch.save) and back, and builds
the book's three networks as torch.nn modules that load it, so the same
weights give the same predictions in both (tests/interop.py checks it on
100 Fashion-MNIST test images).

  python3 tools/sg2torch.py to-torch weights.safetensors weights.pt
  python3 tools/sg2torch.py to-sg weights.pt weights.safetensors

In Python:

  import torch, sg2torch                      # tools/ on sys.path
  state = sg2torch.to_torch(sg2torch.load_safetensors("w.safetensors")[0])
  model = sg2torch.book_model(state)          # mlp, cnn or deep, from the names
  model.load_state_dict(state)
  model.eval()
  logits = model(images)                      # (N, 1, 28, 28) floats in [0, 1]

The mapping (docs/nn.md, "PyTorch interop"), by a tensor's short name:

  ScratchGrad                        PyTorch
  <layer>.W  (in, out)  linear       <layer>.weight (out, in)  = W transposed
  <layer>.W  (O, C, k, k)  conv2d    <layer>.weight (O, C, k, k), the same
  <layer>.b                          <layer>.bias
  <layer>.gamma, .beta  batch norm   <layer>.weight, .bias
  <layer>.running_mean, .running_var <layer>.running_mean, .running_var
  (none)                             <layer>.num_batches_tracked (0 on the way
                                     in; dropped on the way back)

Layer names stay as they are (fc1, conv1, bn1, ...). Both frameworks compute
a convolution as a cross-correlation over (C, k, k) windows and flatten
(N, C, H, W) in C order, so no other reordering is needed. A checkpoint's
optimizer tensors (optim.*) are left out: the state_dict is the model's.
torch -> ScratchGrad writes tensors sorted by name with no metadata, which is
byte for byte what sg_model_save writes for the same values.

Needs python3 and torch (Debian: python3-torch); the safetensors files are
read and written with the standard library (the Python safetensors package
is not in Debian 12), following the format's specification.
"""
import collections
import json
import struct
import sys

import numpy as np
import torch

# ---- safetensors (https://huggingface.co/docs/safetensors), F32 only ----


def load_safetensors(path):
    """(OrderedDict name -> float32 tensor in file order, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: {len(raw)} bytes, less than the 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: the header claims {n} bytes but only {len(raw) - 8} follow")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n:]
    out = collections.OrderedDict()
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if e["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name!r} has dtype {e['dtype']}; only F32 is converted")
        b, end = e["data_offsets"]
        a = np.frombuffer(data[b:end], dtype="<f4").astype(np.float32).reshape(e["shape"])
        out[name] = torch.from_numpy(a.copy())
    return out, meta


def save_safetensors(path, tensors, metadata=None):
    """Write float32 tensors sorted by name, data contiguous in that order,
    compact JSON padded with spaces to a multiple of 8 (the reference
    writer's layout, and ScratchGrad's)."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in sorted(metadata.items())}
    for name in sorted(tensors, key=lambda s: s.encode("utf-8")):
        t = tensors[name].detach().to(torch.float32).contiguous().cpu()
        blob = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


# ---- the mapping ----


def _split(name):
    layer, _, short = name.rpartition(".")
    return layer, short


def to_torch(sg):
    """ScratchGrad's named tensors -> a PyTorch state_dict (optim.* skipped)."""
    out = collections.OrderedDict()
    for name, t in sg.items():
        if name.startswith("optim."):
            continue
        layer, short = _split(name)
        if short == "W":
            out[layer + ".weight"] = t.t().contiguous() if t.dim() == 2 else t.clone()
        elif short == "b":
            out[layer + ".bias"] = t.clone()
        elif short == "gamma":
            out[layer + ".weight"] = t.clone()
        elif short == "beta":
            out[layer + ".bias"] = t.clone()
        elif short in ("running_mean", "running_var"):
            out[name] = t.clone()
            out.setdefault(layer + ".num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            raise ValueError(f"tensor {name!r}: no PyTorch counterpart known (W, b, gamma, beta, running_*)")
    # num_batches_tracked after the running stats, as torch orders them
    for key in [k for k in out if k.endswith(".num_batches_tracked")]:
        out.move_to_end(key)
    return out


def to_sg(state):
    """A PyTorch state_dict -> ScratchGrad's named tensors."""
    bn_layers = {_split(k)[0] for k in state if k.endswith(".running_mean")}
    out = collections.OrderedDict()
    for name, t in state.items():
        layer, short = _split(name)
        t = t.detach().cpu()
        if short == "num_batches_tracked":
            continue
        if layer in bn_layers:
            new = {"weight": "gamma", "bias": "beta", "running_mean": "running_mean",
                   "running_var": "running_var"}.get(short)
            if new is None:
                raise ValueError(f"batch-norm tensor {name!r}: unknown")
            out[layer + "." + new] = t.to(torch.float32).clone()
        elif short == "weight":
            out[layer + ".W"] = (t.t().contiguous() if t.dim() == 2 else t).to(torch.float32).clone()
        elif short == "bias":
            out[layer + ".b"] = t.to(torch.float32).clone()
        else:
            raise ValueError(f"tensor {name!r}: no ScratchGrad counterpart known (weight, bias, running_*)")
    return out


# ---- the book's networks (demos/train.c's build_model) as torch modules ----

DEEP_CONVS = [(16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1)]  # (out channels, padding)


def book_model(state):
    """The network whose PyTorch state_dict is `state`: mlp (TwoLayerNet),
    cnn (SimpleConvNet) or deep (DeepConvNet), with or without batch norm,
    layer names as in ScratchGrad's trainer. Sizes come from the tensors."""
    nn = torch.nn
    L = collections.OrderedDict()
    bn = "bn1.weight" in state
    fc1, fc2 = state["fc1.weight"], state["fc2.weight"]
    if "conv6.weight" in state:  # DeepConvNet
        for i, (out, pad) in enumerate(DEEP_CONVS, 1):
            w = state[f"conv{i}.weight"]
            L[f"conv{i}"] = nn.Conv2d(w.shape[1], out, 3, 1, pad)
            if bn:
                L[f"bn{i}"] = nn.BatchNorm2d(out)
            L[f"relu{i}"] = nn.ReLU()
            if i % 2 == 0:
                L[f"pool{i // 2}"] = nn.MaxPool2d(2, 2)
        L["flatten"] = nn.Flatten()
        L["fc1"] = nn.Linear(fc1.shape[1], fc1.shape[0])
        L["relu7"] = nn.ReLU()
        L["drop1"] = nn.Dropout(0.5)
        L["fc2"] = nn.Linear(fc2.shape[1], fc2.shape[0])
    elif "conv1.weight" in state:  # SimpleConvNet
        w = state["conv1.weight"]
        L["conv1"] = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], 1, 0)
        L["relu1"] = nn.ReLU()
        L["pool1"] = nn.MaxPool2d(2, 2)
        L["flatten"] = nn.Flatten()
        L["fc1"] = nn.Linear(fc1.shape[1], fc1.shape[0])
        L["relu2"] = nn.ReLU()
        L["fc2"] = nn.Linear(fc2.shape[1], fc2.shape[0])
    else:  # TwoLayerNet
        L["flatten"] = nn.Flatten()
        L["fc1"] = nn.Linear(fc1.shape[1], fc1.shape[0])
        if bn:
            L["bn1"] = nn.BatchNorm1d(fc1.shape[0])
        L["relu1"] = nn.ReLU()
        L["fc2"] = nn.Linear(fc2.shape[1], fc2.shape[0])
    return nn.Sequential(L)


def main(argv):
    if len(argv) != 4 or argv[1] not in ("to-torch", "to-sg"):
        print(__doc__.split("\n\n")[2], file=sys.stderr)
        print("usage: sg2torch.py to-torch IN.safetensors OUT.pt | to-sg IN.pt OUT.safetensors", file=sys.stderr)
        return 2
    mode, src, dst = argv[1:]
    try:
        if mode == "to-torch":
            sg, meta = load_safetensors(src)
            skipped = sum(1 for k in sg if k.startswith("optim."))
            state = to_torch(sg)
            book_model(state).load_state_dict(state)  # a check: one of the book's networks
            torch.save(state, dst)
            note = f" (a checkpoint of epoch {meta['epoch']}: {skipped} optimizer tensors left out)" if skipped else ""
            print(f"sg2torch: {src}: {len(state)} tensors written to {dst}{note}")
        else:
            state = torch.load(src, map_location="cpu")
            if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
                state = state["state_dict"]
            if isinstance(state, torch.nn.Module):
                state = state.state_dict()
            sg = to_sg(state)
            save_safetensors(dst, sg)
            print(f"sg2torch: {src}: {len(sg)} tensors written to {dst}")
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        print(f"sg2torch: {mode} {src}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
