#!/usr/bin/python3
"""Writes data/weights_catalogue.json and data/imagenet_classes.txt.

Source of truth: the weights enums of Debian's torchvision 0.14 (`/usr/bin/python3`),
plus one timm entry (MobileNetV1, not in torchvision) whose facts are copied from timm's
pretrained config and results table. Run from the repository root:

    /usr/bin/python3 scripts/make_catalogue.py
"""
import json
import math
import os
import re
import sys

from torchvision.models import get_model_weights
from torchvision.models._meta import _IMAGENET_CATEGORIES

ARCHITECTURES = (
    ["vgg16", "vgg19", "vgg16_bn", "vgg19_bn"]
    + ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    + ["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"]
    + [f"efficientnet_b{i}" for i in range(8)]
)

# torchvision's enum member -> our tag. IMAGENET1K_FEATURES (VGG16 ported from Caffe,
# no usable classifier, no metrics, 0..255 inputs) is left out.
TAGS = {"IMAGENET1K_V1": "tv_in1k", "IMAGENET1K_V2": "tv2_in1k"}

# torchvision checks the hex digits after the last '-' of the file name.
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")


def preprocessing(weights):
    keywords = dict(weights.transforms.keywords)
    crop = int(keywords.pop("crop_size"))
    resize = int(keywords.pop("resize_size", 256))
    interpolation = keywords.pop("interpolation", None)
    mean = keywords.pop("mean", (0.485, 0.456, 0.406))
    std = keywords.pop("std", (0.229, 0.224, 0.225))
    if keywords:
        sys.exit(f"{weights}: unexpected transform settings {keywords}")
    return {
        "resize": resize,
        "crop": crop,
        "mean": [round(float(v), 6) for v in mean],
        "std": [round(float(v), 6) for v in std],
        "interpolation": interpolation.value if interpolation is not None else "bilinear",
    }


def torchvision_entries():
    entries = []
    for arch in ARCHITECTURES:
        enum = get_model_weights(arch)
        default = enum.DEFAULT
        for member_name, weights in enum.__members__.items():
            if member_name == "DEFAULT" or member_name not in TAGS:
                continue
            metrics = weights.meta["_metrics"]["ImageNet-1K"]
            top1, top5 = float(metrics["acc@1"]), float(metrics["acc@5"])
            assert not math.isnan(top1), weights
            file_name = os.path.basename(weights.url)
            match = HASH_REGEX.search(file_name)
            assert match and len(match.group(1)) >= 8, file_name
            categories = weights.meta["categories"]
            assert list(categories) == list(_IMAGENET_CATEGORIES), weights
            tag = TAGS[member_name]
            entries.append({
                "name": f"{arch}.{tag}",
                "architecture": arch,
                "tag": tag,
                "file_name": file_name,
                "url": weights.url,
                "sha256_prefix": match.group(1),
                "format": "pth",
                "preprocessing": preprocessing(weights),
                "top1": top1,
                "top5": top5,
                "num_params": int(weights.meta["num_params"]),
                "num_classes": len(categories),
                "categories": "imagenet-1k",
                "is_default": weights is default,
                "source": f"torchvision {type(weights).__name__}.{member_name}",
            })
    return entries


def timm_entries():
    # timm `mobilenetv1_100.ra4_e3600_r224_in1k` (timm/models/mobilenetv3.py default_cfgs:
    # Inception mean/std, crop_pct 0.875, bilinear; README results table at 224 px:
    # top1 75.382, top5 92.312, 4.23 M parameters). The Hugging Face hub publishes no
    # SHA-256 in the file name, so the prefix is empty: fetch/import verify such a file by
    # parsing it as weights of the architecture instead.
    return [{
        "name": "mobilenet_v1.ra4_in1k",
        "architecture": "mobilenet_v1",
        "tag": "ra4_in1k",
        "file_name": "mobilenetv1_100.ra4_e3600_r224_in1k.safetensors",
        "url": "https://huggingface.co/timm/mobilenetv1_100.ra4_e3600_r224_in1k/resolve/main/model.safetensors",
        "sha256_prefix": "",
        "format": "safetensors",
        "preprocessing": {"resize": 256, "crop": 224, "mean": [0.5, 0.5, 0.5],
                          "std": [0.5, 0.5, 0.5], "interpolation": "bilinear"},
        "top1": 75.382,
        "top5": 92.312,
        # timm reports 4.23 M; 4,231,976 is the exact count of MobileNet 1.0 (conv weights,
        # BN affine parameters, 1024x1000 classifier with bias).
        "num_params": 4231976,
        "num_classes": 1000,
        "categories": "imagenet-1k",
        "is_default": True,
        "source": "timm mobilenetv1_100.ra4_e3600_r224_in1k",
    }]


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
    entries = torchvision_entries() + timm_entries()
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), "duplicate catalogue names"
    for arch in {e["architecture"] for e in entries}:
        defaults = [e for e in entries if e["architecture"] == arch and e["is_default"]]
        assert len(defaults) == 1, arch
    with open(os.path.join(root, "weights_catalogue.json"), "w") as f:
        json.dump({"version": 1, "weights": entries}, f, indent=1)
        f.write("\n")
    with open(os.path.join(root, "imagenet_classes.txt"), "w") as f:
        assert len(_IMAGENET_CATEGORIES) == 1000
        for name in _IMAGENET_CATEGORIES:
            assert "\n" not in name
            f.write(name + "\n")
    print(f"{len(entries)} catalogue entries, {len(_IMAGENET_CATEGORIES)} class names")


if __name__ == "__main__":
    main()
