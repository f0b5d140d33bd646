#!/usr/bin/python3
"""Writes the .pth fixtures of the weights tests into argv[1] (Debian's python3-torch).

sd_zip.pth / sd_legacy.pth: the same OrderedDict (with _metadata) in both torch.save
formats: float32, float16, bfloat16, float64, int64, a 0-dim int64 buffer, and three views
of one shared storage (offset, transposed strides, strided column).
checkpoint.pth: {"epoch": 3, "state_dict": <that dict>}.
evil_*.pth: pickles that would run code (os.system / builtins.eval) if unpickled by Python.
expected.json: key -> {dtype, shape, values (flattened, row-major)}.
"""
import collections
import json
import os
import sys

import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

base = torch.arange(24, dtype=torch.float32) * 0.5 - 3.0
sd = collections.OrderedDict()
sd["conv.weight"] = torch.linspace(-1.0, 1.0, 2 * 3 * 2 * 2).reshape(2, 3, 2, 2)
sd["conv.bias"] = torch.tensor([0.1, -0.2], dtype=torch.float32)
sd["half"] = torch.tensor([1.5, -2.25, 65504.0, 0.0009765625, -0.0], dtype=torch.float16)
sd["bf16"] = torch.tensor([[1.0, -3.5], [1e20, 7.0]], dtype=torch.bfloat16)
sd["double"] = torch.tensor([1.0 / 3.0, -1e-300], dtype=torch.float64)
sd["long"] = torch.tensor([1, -2, 30000000000, -(2**62)], dtype=torch.int64)
sd["bn.num_batches_tracked"] = torch.tensor(7, dtype=torch.int64)
sd["shared.slice"] = base[5:11]                    # storage offset 5
sd["shared.transposed"] = base.view(4, 6).t()      # strides (1, 6)
sd["shared.column"] = base.view(4, 6)[:, 2]        # offset 2, stride 6
sd["shared.whole"] = base
sd._metadata = collections.OrderedDict([("", {"version": 1}), ("bn", {"version": 2})])

torch.save(sd, os.path.join(out, "sd_zip.pth"))
torch.save(sd, os.path.join(out, "sd_legacy.pth"), _use_new_zipfile_serialization=False)
torch.save({"epoch": 3, "optimizer": {"lr": 0.1}, "state_dict": sd}, os.path.join(out, "checkpoint.pth"))
torch.save(collections.OrderedDict((("module." + k), v) for k, v in sd.items()),
           os.path.join(out, "data_parallel.pth"))

expected = {}
for key, value in sd.items():
    flat = value.contiguous().reshape(-1)
    values = flat.tolist() if not value.is_floating_point() else flat.double().tolist()
    expected[key] = {"dtype": str(value.dtype).replace("torch.", ""), "shape": list(value.shape),
                     "values": values}
with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(expected, f)

marker = os.path.join(out, "EXECUTED")


class SystemCall:
    def __reduce__(self):
        return (os.system, ("touch " + marker,))


class Eval:
    def __reduce__(self):
        return (eval, ("open(%r, 'w').write('x')" % marker,))


evil_sd = collections.OrderedDict([("w", torch.zeros(2)), ("payload", SystemCall())])
torch.save(evil_sd, os.path.join(out, "evil_system_zip.pth"))
torch.save(evil_sd, os.path.join(out, "evil_system_legacy.pth"), _use_new_zipfile_serialization=False)
torch.save(collections.OrderedDict([("payload", Eval())]), os.path.join(out, "evil_eval_zip.pth"))
assert not os.path.exists(marker)
print("fixtures written to", out)
