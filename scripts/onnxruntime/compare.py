"""torchvision's model against vtl's ONNX export of the same .pth, run by ONNX Runtime.

For each model: torchvision's random initialisation with BatchNorm statistics moved away
from 0 and 1, saved as .pth; `vtl export --dynamic-batch`; a batch of 3 random 224 px
inputs through torchvision and through ONNX Runtime (run_model.js). Prints the largest
logit difference and whether the top-1 classes agree; exits 1 if a difference exceeds
1e-4 x max(1, max|logit|).
    python3 compare.py VTL WORK_DIR [MODEL...]
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision

vtl, work = sys.argv[1], Path(sys.argv[2])
models = sys.argv[3:] or ['resnet50', 'mobilenet_v3_large', 'efficientnet_b0', 'mobilenet_v2', 'vgg16']
here = Path(__file__).resolve().parent
torch.manual_seed(1)
failed = False
for name in models:
    model = getattr(torchvision.models, name)()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    model.eval()
    weights, onnx = work / f'{name}.pth', work / f'{name}.onnx'
    torch.save(model.state_dict(), weights)
    subprocess.run([vtl, 'export', name, '--weights', str(weights), '--dynamic-batch', '--out',
                    str(onnx)], check=True, stdout=subprocess.DEVNULL)
    x = torch.randn(3, 3, 224, 224)
    x.numpy().astype(np.float32).tofile(work / 'input.bin')
    with torch.no_grad():
        expected = model(x).numpy()
    subprocess.run(['node', str(here / 'run_model.js'), str(onnx), str(work / 'input.bin'),
                    str(work / 'output.bin'), '3', '224'], check=True, cwd=work)
    got = np.fromfile(work / 'output.bin', dtype=np.float32).reshape(expected.shape)
    difference = float(np.abs(got - expected).max())
    scale = max(1.0, float(np.abs(expected).max()))
    same_top1 = bool((got.argmax(1) == expected.argmax(1)).all())
    print(f'{name}: batch 3, largest logit difference {difference:.3g} '
          f'(largest logit {float(np.abs(expected).max()):.3g}), same top-1: {same_top1}')
    failed |= difference > 1e-4 * scale or not same_top1
    weights.unlink()
    onnx.unlink()
sys.exit(1 if failed else 0)
