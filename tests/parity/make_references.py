#!/usr/bin/env python3
"""Writes torchvision reference outputs for the C++ parity tests.

Usage: make_references.py OUT_DIR [MODEL ...]

For each model: build it with a fixed seed, give BatchNorm non-trivial running
statistics, save its state_dict the way published files are saved (an OrderedDict in
the zip format; for some models also the legacy non-zip format), and write a fixed input
with the eval-mode logits and globally average-pooled features as raw little-endian
float32 (`<name>.input.f32`, `<name>.logits.f32`, `<name>.pooled.f32`). `index.json`
lists every model with its files and shapes. Existing outputs are reused, so a second
run costs nothing.

Exit status: 0 done; 1 failed (e.g. too little free disk, said with the numbers);
77 torch or torchvision cannot be imported (the caller skips).
"""
import json
import os
import shutil
import sys

try:
    import torch
    import torchvision
except ImportError as error:
    print(f"make_references.py: needs torch and torchvision in {sys.executable}: {error}")
    sys.exit(77)

# Room left on the disk beyond the files themselves, in bytes.
DISK_MARGIN = 64 << 20

# name -> input side. Default resolution where it matters most; smaller for the largest
# models to keep the run short (every model's head uses adaptive pooling).
MODELS = {
    "resnet18": 224, "resnet34": 224, "resnet50": 224, "resnet101": 160, "resnet152": 160,
    "vgg16": 224, "vgg19": 160, "vgg16_bn": 160, "vgg19_bn": 160,
    "mobilenet_v2": 224, "mobilenet_v3_small": 224, "mobilenet_v3_large": 224,
    "efficientnet_b0": 224, "efficientnet_b1": 240, "efficientnet_b2": 192,
    "efficientnet_b3": 192, "efficientnet_b4": 160, "efficientnet_b5": 160,
    "efficientnet_b6": 160, "efficientnet_b7": 160,
}
LEGACY_TOO = {"resnet50", "vgg16", "mobilenet_v2"}
BATCH = 2


def feature_map(model, name, x):
    if name.startswith("resnet"):
        body = torch.nn.Sequential(*list(model.children())[:-2])
        return body(x)
    return model.features(x)


def randomise_batchnorm(model, generator):
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)
            module.num_batches_tracked.fill_(7)


def write_f32(path, tensor):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(tensor.detach().contiguous().float().numpy().astype("<f4").tobytes())
    os.replace(tmp, path)


def main():
    out = sys.argv[1]
    wanted = sys.argv[2:] or list(MODELS)
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    index_path = os.path.join(out, "index.json")
    index = json.load(open(index_path)) if os.path.exists(index_path) else {}
    for name in wanted:
        size = MODELS[name]
        files = {"zip": f"{name}.pth"}
        if name in LEGACY_TOO:
            files["legacy"] = f"{name}.legacy.pth"
        entry = index.get(name)
        if entry and all(os.path.exists(os.path.join(out, f)) for f in entry["weights"].values()):
            continue
        torch.manual_seed(0)
        model = getattr(torchvision.models, name)(weights=None)
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            randomise_batchnorm(model, generator)
        model.eval()
        x = torch.randn(BATCH, 3, size, size, generator=generator)
        with torch.no_grad():
            logits = model(x)
            pooled = feature_map(model, name, x).mean((2, 3))
        state = model.state_dict()  # an OrderedDict, as published files hold
        need = len(files) * sum(t.numel() * t.element_size() for t in state.values())
        free = shutil.disk_usage(out).free
        if free < need + DISK_MARGIN:
            sys.exit(f"make_references.py: {name} needs {need >> 20} MiB in {out} "
                     f"(+{DISK_MARGIN >> 20} MiB margin), only {free >> 20} MiB are free")
        for kind, file in files.items():
            tmp = os.path.join(out, file + ".tmp")
            torch.save(state, tmp, _use_new_zipfile_serialization=(kind == "zip"))
            os.replace(tmp, os.path.join(out, file))
        write_f32(os.path.join(out, f"{name}.input.f32"), x)
        write_f32(os.path.join(out, f"{name}.logits.f32"), logits)
        write_f32(os.path.join(out, f"{name}.pooled.f32"), pooled)
        index[name] = {
            "input_shape": list(x.shape), "logits_shape": list(logits.shape),
            "pooled_shape": list(pooled.shape), "weights": files,
            "max_abs_logit": float(logits.abs().max()),
        }
        with open(index_path + ".tmp", "w") as f:
            json.dump(index, f, indent=1)
        os.replace(index_path + ".tmp", index_path)
        print(f"parity reference: {name} at {size}px", flush=True)


if __name__ == "__main__":
    main()
