"""Reference penultimate features from torchvision for the extraction parity test.

usage: torchvision_features.py DIR ARCH
  reads  DIR/input.npy    float32 [N, 3*H*W] (square images), preprocessed by vtl
  writes DIR/weights.pth   the model's state_dict (torch.save; fixed seed, randomised
                           BatchNorm statistics so eval-mode BN is exercised)
         DIR/weights.npy   every state_dict tensor as float32, concatenated in key order
         DIR/weights.json  [[key, shape, dtype], ...] describing weights.npy
         DIR/reference.npy float32 [N, num_features]: model with fc = Identity
If DIR/features.npy exists (written by `vtl extract`), checks that numpy loads it and
prints its shape and dtype.
"""
import json
import sys

import numpy as np
import torch
import torchvision

out, arch = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
model = getattr(torchvision.models, arch)(weights=None)
with torch.no_grad():
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0.0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.uniform_(0.5, 1.5)
            module.bias.normal_(0.0, 0.1)
model.eval()
state = model.state_dict()
torch.save(state, f"{out}/weights.pth")
keys = [[k, list(v.shape), str(v.dtype)] for k, v in state.items()]
flat = np.concatenate([v.detach().reshape(-1).to(torch.float32).numpy() for v in state.values()])
np.save(f"{out}/weights.npy", flat.astype(np.float32))
with open(f"{out}/weights.json", "w") as f:
    json.dump(keys, f)

x = torch.from_numpy(np.load(f"{out}/input.npy"))
if x.dim() == 2:  # vtl writes [N, 3*H*W]; images are square
    side = int(round((x.shape[1] // 3) ** 0.5))
    x = x.reshape(x.shape[0], 3, side, side)
model.fc = torch.nn.Identity()
with torch.no_grad():
    reference = model(x).numpy().astype(np.float32)
np.save(f"{out}/reference.npy", reference)

try:
    features = np.load(f"{out}/features.npy")
    print(f"features.npy {features.shape} {features.dtype} "
          f"max|diff| {float(np.abs(features.astype(np.float32) - reference).max()):.3g}")
except FileNotFoundError:
    pass
