#!/usr/bin/env python3
"""Reference timing: torchvision eval-mode forward on the same LibTorch build.

Prints one JSON line: {"model", "batch", "size", "threads", "ms_per_batch"} (median).
"""
import argparse
import json
import statistics
import time

import torch
import torchvision

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="resnet50")
parser.add_argument("--batch", type=int, default=8)
parser.add_argument("--size", type=int, default=224)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--repeats", type=int, default=10)
args = parser.parse_args()

torch.set_num_threads(args.threads)
model = getattr(torchvision.models, args.model)(weights=None).eval()
x = torch.randn(args.batch, 3, args.size, args.size)
times = []
with torch.no_grad():
    for _ in range(2):
        model(x)
    for _ in range(args.repeats):
        start = time.perf_counter()
        model(x)
        times.append((time.perf_counter() - start) * 1000)
print(json.dumps({"model": args.model, "batch": args.batch, "size": args.size,
                  "threads": torch.get_num_threads(), "ms_per_batch": statistics.median(times)}))
