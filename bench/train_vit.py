#!/usr/bin/python3
"""Trains the small vision transformer of the sweep benchmarks and exports it.

A 4-layer ViT of width 96 (4 heads, MLP 192, 7x7 patches, class token) on Fashion-MNIST from
Debian's `dataset-fashion-mnist`, with Debian's `python3-torch` (run with /usr/bin/python3):

    apt-get install python3-torch dataset-fashion-mnist libopenblas0-pthread
    /usr/bin/python3 bench/train_vit.py [--epochs 4]

(without OpenBLAS, Debian's torch multiplies matrices with its generic BLAS, five times slower).

Writes (git-ignored) .cache/vit_fmnist.onnx and .cache/fmnist_test.safetensors (the 10,000 test
images as x [10000, 1, 28, 28] float32 and labels y int64). Seeded; about 10 minutes on 2 cores.
"""
import argparse
import gzip
import json
import os
import struct
import time

import torch
from torch import nn

DATA = "/usr/share/datasets/fashion-mnist"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".cache")


def idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = struct.unpack(">" + "I" * dims, raw[4 : 4 + 4 * dims])
    return torch.frombuffer(bytearray(raw[4 + 4 * dims :]), dtype=torch.uint8).reshape(shape)


class Block(nn.Module):
    def __init__(self, width, heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)
        self.heads = heads

    def forward(self, x):
        n, t, w = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(n, t, 3, self.heads, w // self.heads).permute(
            2, 0, 3, 1, 4
        )
        a = torch.softmax(q @ k.transpose(-1, -2) / (w // self.heads) ** 0.5, dim=-1)
        x = x + self.proj((a @ v).transpose(1, 2).reshape(n, t, w))
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, width=96, depth=4, heads=4, hidden=192, patch=7):
        super().__init__()
        self.patch = patch
        tokens = (28 // patch) ** 2
        self.embed = nn.Linear(patch * patch, width)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, width) * 0.02)
        self.blocks = nn.Sequential(*[Block(width, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        n = x.shape[0]
        p = self.patch
        x = x.reshape(n, 28 // p, p, 28 // p, p).permute(0, 1, 3, 2, 4).reshape(n, -1, p * p)
        x = torch.cat([self.cls.expand(n, -1, -1), self.embed(x)], dim=1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, (dtype, t) in tensors.items():
        data = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(20261206)
    torch.set_num_threads(os.cpu_count() or 1)
    mean, std = 0.2860, 0.3530
    norm = lambda images: ((images.float() / 255 - mean) / std).unsqueeze(1)
    train_x, train_y = norm(idx("train-images-idx3-ubyte.gz")), idx("train-labels-idx1-ubyte.gz").long()
    test_x, test_y = norm(idx("t10k-images-idx3-ubyte.gz")), idx("t10k-labels-idx1-ubyte.gz").long()
    model = ViT()
    steps = args.epochs * (len(train_x) // 128)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    started = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train_x))
        for i in range(0, len(order) - 127, 128):
            b = order[i : i + 128]
            loss = nn.functional.cross_entropy(model(train_x[b]), train_y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            correct = sum((model(test_x[i : i + 1000]).argmax(1) == test_y[i : i + 1000]).sum().item()
                          for i in range(0, len(test_x), 1000))
        print(f"epoch {epoch + 1}: test accuracy {correct / len(test_x):.4f} ({time.time() - started:.0f} s)", flush=True)
    os.makedirs(OUT, exist_ok=True)
    torch.onnx.export(model, test_x[:1], os.path.join(OUT, "vit_fmnist.onnx"), input_names=["x"],
                      output_names=["logits"], dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}},
                      opset_version=13)
    write_safetensors(os.path.join(OUT, "fmnist_test.safetensors"),
                      {"x": ("F32", test_x), "y": ("I64", test_y)})
    weights = sum(p.numel() for p in model.parameters())
    print(f"wrote {OUT}/vit_fmnist.onnx ({weights} parameters) and fmnist_test.safetensors")


if __name__ == "__main__":
    main()
