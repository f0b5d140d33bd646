#!/usr/bin/env python3
"""Reference: decode + RandomResizedCrop(224) + RandomHorizontalFlip + ToTensor + Normalize
per image with PIL and torchvision, on one core, over the JPEGs in a folder (as a
torchvision DataLoader worker does). With --make N, first writes N JPEG photos-to-be from
Debian's openclipart PNGs into the folder (alpha composited on white, shorter side 375-500
px, quality 90) so both sides decode the same files.

Prints one JSON line: {"images", "seconds", "images_per_second"}.
"""
import argparse
import json
import os
import random
import time

import torch
from PIL import Image
from torchvision import transforms

parser = argparse.ArgumentParser()
parser.add_argument("folder")
parser.add_argument("--make", type=int, default=0)
parser.add_argument("--passes", type=int, default=2)
args = parser.parse_args()


def make_jpegs(folder, count):
    os.makedirs(folder, exist_ok=True)
    root = "/usr/share/openclipart/png"
    files = []
    for directory, _, names in os.walk(root, followlinks=True):
        for name in sorted(names):
            path = os.path.join(directory, name)
            if name.endswith(".png") and 20000 < os.path.getsize(path) < 400000:
                files.append(os.path.realpath(path))
    files = sorted(set(files))
    random.Random(0).shuffle(files)
    written = 0
    for path in files:
        if written == count:
            break
        try:
            image = Image.open(path)
            image.load()
        except Exception:
            continue
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        short = random.Random(written).randint(375, 500)
        scale = short / min(canvas.size)
        size = (max(1, round(canvas.size[0] * scale)), max(1, round(canvas.size[1] * scale)))
        canvas.convert("RGB").resize(size, Image.BICUBIC).save(
            os.path.join(folder, f"{written:05d}.jpg"), quality=90)
        written += 1


if args.make:
    make_jpegs(args.folder, args.make)

torch.set_num_threads(1)
transform = transforms.Compose([
    transforms.RandomResizedCrop(224),
    transforms.RandomHorizontalFlip(),
    transforms.ToTensor(),
    transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
])
paths = sorted(os.path.join(args.folder, n) for n in os.listdir(args.folder) if n.endswith(".jpg"))
for path in paths[:20]:  # warm up
    transform(Image.open(path).convert("RGB"))
start = time.perf_counter()
for _ in range(args.passes):
    for path in paths:
        transform(Image.open(path).convert("RGB"))
seconds = time.perf_counter() - start
count = len(paths) * args.passes
print(json.dumps({"images": count, "seconds": seconds, "images_per_second": count / seconds}))
