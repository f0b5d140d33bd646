#!/usr/bin/env python3
"""Reference for bench/model_throughput_bench: torchvision models in PyTorch, eager and
(where PyTorch has it) torch.compile, with the same method as the C++ side.

Training step: SGD (lr 0.01, momentum 0.9), cross-entropy on random labels, forward under
autocast (bf16 unless --precision f32), zero_grad(set_to_none), backward, step.
Inference: eval mode, inference_mode, autocast. Synthetic N x 3 x size x size input,
channels_last unless --no-channels-last. Modes: train, infer (logits), features (the base's
globally average-pooled features), finetune (requires_grad only from --finetune-from on and
in a new dropout 0.2 + linear head; the base in eval mode, the head in train mode).
Prints one JSON line per measurement:
{"side": "pytorch", "model", "mode", "batch", "compiled", "img_per_s"}.
"""
import argparse
import json
import time

import torch
import torchvision

parser = argparse.ArgumentParser()
parser.add_argument("--device", default="cuda")
parser.add_argument("--models", default="resnet50,efficientnet_b0,mobilenet_v3_large,vgg16")
parser.add_argument("--train-batch", type=int, default=256)
parser.add_argument("--infer-batch", type=int, default=512)
parser.add_argument("--size", type=int, default=224)
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--warmup", type=int, default=5)
parser.add_argument("--precision", choices=["bf16", "f32"], default="bf16")
parser.add_argument("--no-channels-last", action="store_true")
parser.add_argument("--cudnn-benchmark", action="store_true")
parser.add_argument("--compile", default="",
                    help="comma list of models also measured with torch.compile "
                         "(train and infer modes)")
parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch's default)")
parser.add_argument("--modes", default="train,infer,features,finetune")
parser.add_argument("--finetune-from", default="layer4")
args = parser.parse_args()

if args.threads > 0:
    torch.set_num_threads(args.threads)
torch.backends.cudnn.benchmark = args.cudnn_benchmark
device = torch.device(args.device)
channels_last = not args.no_channels_last


def synchronize():
    if device.type == "cuda":
        torch.cuda.synchronize()


class PooledFeatures(torch.nn.Module):
    """The base of a torchvision classifier up to its global average pooling: [N, C]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        m = self.model
        if hasattr(m, "layer4"):  # resnet
            x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
            x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
        else:  # vgg, efficientnet, mobilenet
            x = m.features(x)
        return torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1)


class TransferModel(torch.nn.Module):
    """Pooled base features -> dropout 0.2 -> linear, as vtl's TransferModel."""

    def __init__(self, model, num_features, num_classes=1000):
        super().__init__()
        self.base = PooledFeatures(model)
        self.head = torch.nn.Sequential(torch.nn.Dropout(0.2),
                                        torch.nn.Linear(num_features, num_classes))

    def forward(self, x):
        return self.head(self.base(x))


def measure(name, mode, batch, compiled):
    """Prints one measurement; False (and prints nothing) for finetune on a model without
    the --finetune-from block."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(num_classes=1000)
    if mode == "finetune" and not hasattr(model, args.finetune_from):
        return False
    if mode in ("features", "finetune"):
        with torch.no_grad():
            width = PooledFeatures(model)(torch.zeros(1, 3, 64, 64)).shape[1]
        model = TransferModel(model, width)
        for p in model.base.parameters():
            p.requires_grad_(False)
        if mode == "finetune":
            for p in getattr(model.base.model, args.finetune_from).parameters():
                p.requires_grad_(True)
    model = model.to(device)
    x = torch.randn(batch, 3, args.size, args.size, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch,), device=device)
    run = model.base if mode == "features" else model
    forward = torch.compile(run) if compiled else run
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.01, momentum=0.9)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16,
                              enabled=args.precision == "bf16")

    def step():
        if mode in ("train", "finetune"):
            if mode == "train":
                model.train()
            else:
                model.eval()
                model.head.train()
            with autocast:
                loss = torch.nn.functional.cross_entropy(forward(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        else:
            model.eval()
            with torch.inference_mode(), autocast:
                forward(x)

    for _ in range(args.warmup):
        step()
    synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    synchronize()
    seconds = time.perf_counter() - start
    print(json.dumps(dict(side="pytorch", model=name, mode=mode, batch=batch, compiled=compiled,
                          img_per_s=round(batch * args.steps / seconds, 1))), flush=True)
    del model, optimizer, forward
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return True


print(json.dumps(dict(side="pytorch", torch=torch.__version__,
                      torchvision=torchvision.__version__,
                      device=torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
                      compile_available=hasattr(torch, "compile"))), flush=True)
to_compile = [m for m in args.compile.split(",") if m]
for name in [m for m in args.models.split(",") if m]:
    for mode in [m for m in args.modes.split(",") if m]:
        batch = args.train_batch if mode in ("train", "finetune") else args.infer_batch
        if not measure(name, mode, batch, False):
            continue
        # torch.compile only where the GPU issue's anchors have it (train and infer)
        if name in to_compile and mode in ("train", "infer") and hasattr(torch, "compile"):
            measure(name, mode, batch, True)
