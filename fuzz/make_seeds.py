#!/usr/bin/python3
"""Writes the seed inputs of every fuzz target into fuzz/corpus/<target>/seed-*.

    /usr/bin/python3 fuzz/make_seeds.py            # (re)writes the seeds, keeps other files

Seeds are small valid files as vtl and its producers write them (torch.save, numpy.save,
PIL, the JSON vtl writes, HTTP requests a browser sends), plus a few typical bad ones.
Needs torch, numpy and PIL. The json target's first byte picks the reader (see
fuzz/json_target.cpp).
"""
import collections
import io
import json
import os
import pathlib
import struct
import zlib

import numpy
import torch
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"


def put(target, name, data):
    folder = ROOT / target
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (folder / ("seed-" + name)).write_bytes(data)


def torch_bytes(obj, legacy=False):
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def pth_seeds():
    torch.manual_seed(0)
    state = collections.OrderedDict(
        [("conv.weight", torch.randn(2, 1, 2, 2)), ("conv.bias", torch.zeros(2)),
         ("bn.num_batches_tracked", torch.tensor(3))])
    mixed = {"h": torch.randn(3).half(), "bf": torch.randn(2).bfloat16(),
             "d": torch.randn(2).double(), "i": torch.arange(4, dtype=torch.int32),
             "u": torch.arange(3, dtype=torch.uint8), "flag": torch.tensor([True, False])}
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    views = {"base": base, "t": base.t(), "row": base[1], "col": base[:, 2]}
    for legacy in (False, True):
        suffix = "legacy" if legacy else "zip"
        put("pth", f"state_dict-{suffix}", torch_bytes(state, legacy))
        put("pth", f"dtypes-{suffix}", torch_bytes(mixed, legacy))
        put("pth", f"views-{suffix}", torch_bytes(views, legacy))
        put("pth", f"checkpoint-{suffix}",
            torch_bytes({"epoch": 2, "state_dict": state, "best": 0.5}, legacy))
    put("pth", "empty-dict-zip", torch_bytes({}))
    put("pth", "not-tensors-zip", torch_bytes({"a": [1, 2.5, "x", None, (True,)]}))
    put("pth", "truncated-zip", torch_bytes(state)[:300])

    class Evil:  # a pickle that would call os.system: refused
        def __reduce__(self):
            return (os.system, ("true",))
    put("pth", "os-system-zip", torch_bytes({"x": Evil()}))
    put("pth", "os-system-legacy", torch_bytes({"x": Evil()}, legacy=True))
    put("pth", "empty", b"")


def safetensors_bytes(tensors, metadata=None, header=None):
    entries, data, offset = {}, b"", 0
    for name, array in tensors.items():
        raw = array.tobytes()
        entries[name] = {"dtype": {"float32": "F32", "float16": "F16", "int64": "I64",
                                   "int32": "I32", "uint8": "U8", "bool": "BOOL",
                                   "float64": "F64", "int8": "I8", "int16": "I16"}[str(array.dtype)],
                         "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    if metadata:
        entries["__metadata__"] = metadata
    text = json.dumps(header if header is not None else entries).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds():
    rng = numpy.random.default_rng(0)
    put("safetensors", "f32", safetensors_bytes(
        {"w": rng.standard_normal((2, 3)).astype("float32"), "b": numpy.zeros(3, "float32")},
        {"format": "pt"}))
    put("safetensors", "dtypes", safetensors_bytes(
        {"h": numpy.ones(2, "float16"), "l": numpy.arange(3), "i": numpy.arange(2, dtype="int32"),
         "u": numpy.arange(4, dtype="uint8"), "z": numpy.array([True, False]),
         "d": numpy.ones(1, "float64"), "s": numpy.zeros(2, "int16"), "c": numpy.zeros(2, "int8")}))
    put("safetensors", "scalar-and-empty", safetensors_bytes(
        {"s": numpy.array(1.5, "float32"), "e": numpy.zeros((0, 4), "float32")}))
    put("safetensors", "overlap", safetensors_bytes({}, header={
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}) + bytes(12))
    put("safetensors", "past-end", safetensors_bytes({}, header={
        "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}) + bytes(8))
    put("safetensors", "bad-dtype", safetensors_bytes({}, header={
        "a": {"dtype": "Q8", "shape": [1], "data_offsets": [0, 1]}}) + bytes(1))
    put("safetensors", "header-not-object", struct.pack("<Q", 2) + b"[]")
    put("safetensors", "huge-header-size", struct.pack("<Q", 1 << 62) + b"{}")


def npy_bytes(array, version=None):
    buffer = io.BytesIO()
    if version:
        numpy.lib.format.write_array(buffer, array, version=version)
    else:
        numpy.save(buffer, array)
    return buffer.getvalue()


def npy_seeds():
    rng = numpy.random.default_rng(0)
    matrix = rng.standard_normal((3, 4)).astype("float32")
    put("npy", "f32-2d", npy_bytes(matrix))
    put("npy", "f32-1d", npy_bytes(matrix[0].copy()))
    put("npy", "f16-2d", npy_bytes(matrix.astype("float16")))
    put("npy", "empty-rows", npy_bytes(numpy.zeros((0, 4), "float32")))
    put("npy", "f64", npy_bytes(matrix.astype("float64")))
    put("npy", "big-endian", npy_bytes(matrix.astype(">f4")))
    put("npy", "fortran", npy_bytes(numpy.asfortranarray(matrix)))
    put("npy", "3d", npy_bytes(numpy.zeros((2, 2, 2), "float32")))
    put("npy", "version-2", npy_bytes(matrix, version=(2, 0)))
    put("npy", "truncated", npy_bytes(matrix)[:-5])


PREPROCESSING = {"crop": 64, "interpolation": "bilinear", "mean": [0.485, 0.456, 0.406],
                 "resize": 73, "std": [0.229, 0.224, 0.225]}
SPEC = {"dim": 4, "layer": "avg_pool", "model": "resnet18", "normalize": "none",
        "preprocessing": PREPROCESSING, "weights": "random(seed=0)"}
READERS = ["run", "features", "manifest", "model", "index", "classifier", "split"]


def put_json(reader, name, document):
    text = document if isinstance(document, str) else json.dumps(document, indent=2) + "\n"
    put("json", f"{reader}-{name}", bytes([READERS.index(reader)]) + text.encode())


def json_seeds():
    config = {"amp": "off", "balanced_class_weights": False, "batch_size": 32,
              "cache_features": "auto", "channels_last": False, "clip_grad_norm": 0.0,
              "device": "cpu", "early_stopping_patience": 0, "epochs": 10, "finetune_epochs": 5,
              "finetune_lr": 0.0001, "label_smoothing": 0.0, "lr": 0.003, "momentum": 0.9,
              "monitor": "val_loss", "nesterov": False, "optimizer": "adam",
              "plateau_factor": 0.1, "plateau_patience": 0, "restore_best": True,
              "schedule": "constant", "seed": 0, "step_epochs": 10, "step_gamma": 0.1,
              "strategy": "finetune", "train_bn": False, "unfreeze": 10, "unfreeze_from": "",
              "warmup_epochs": 0.0, "weight_decay": 0.0}
    augment = {"brightness": 0.2, "contrast": 0.2, "cutmix_alpha": 0.0, "horizontal_flip": True,
               "hue": 0.02, "mixup_alpha": 0.0, "random_resized_crop": True,
               "ratio_max": 1.3333333333333333, "ratio_min": 0.75, "rotation": 10.0,
               "saturation": 0.2, "scale_max": 1.0, "scale_min": 0.25, "translate": 0.1,
               "zoom": 0.1}
    run = {"augment": True, "augment_options": augment, "config": config, "data": "/data/pets",
           "dropout": 0.2, "img_size": 64, "max_image_pixels": 40000000, "model": "resnet18",
           "out": "/runs/pets", "val_dir": "", "val_split": 0.25, "weights": "", "workers": 2}
    put_json("run", "valid", run)
    put_json("run", "no-config", {k: v for k, v in run.items() if k != "config"})
    put_json("run", "wrong-types", dict(run, workers="two", config=dict(config, epochs=[1])))
    put_json("run", "array", "[1, 2]")
    put_json("run", "bad-strategy", dict(run, config=dict(config, strategy="everything")))

    features = {"classes": ["a", "b"], "dtype": "f32", "format": "vtl-features", "items": 2,
                "items_sha256": "00", "rows": 2,
                "shard": {"begin": 0, "count": 1, "end": 2, "index": 0}, "skip_bad": False,
                "skipped": 0, "spec": SPEC, "version": 1}
    put_json("features", "valid", features)
    put_json("features", "array", "[]")
    put_json("features", "rows-string", dict(features, rows="2"))
    put_json("features", "no-spec", {k: v for k, v in features.items() if k != "spec"})
    put_json("features", "classes-numbers", dict(features, classes=[1, 2]))
    put_json("features", "not-json", "{\"format\": ")

    line = lambda item, label, cls: json.dumps(
        {"class": cls, "item": item, "label": label, "path": f"/data/{cls}/{item}.png"})
    put_json("manifest", "valid", line(0, 0, "a") + "\n" + line(1, 1, "b") + "\n")
    put_json("manifest", "unlabelled", line(0, None, "") + "\n" + line(1, None, "") + "\n")
    put_json("manifest", "label-string", line(0, "0", "a") + "\n" + line(1, 1, "b") + "\n")
    put_json("manifest", "one-line", line(0, 0, "a") + "\n")

    model = {"architecture": "mobilenet_v3_small", "base_weights": "random",
             "class_names": ["a", "b"], "format": "vtl-model",
             "head": {"dropout": 0.2, "num_classes": 2, "num_features": 576, "pooling": "avg",
                      "prefix": "classifier"},
             "preprocessing": PREPROCESSING, "training": {}, "version": 1}
    put_json("model", "valid", model)
    put_json("model", "three-classes", dict(model, class_names=["a", "b", "c"],
                                            head=dict(model["head"], num_classes=3)))
    put_json("model", "head-array", dict(model, head=[2]))
    put_json("model", "unknown-architecture", dict(model, architecture="resnet9000"))
    put_json("model", "string", "\"vtl-model\"")

    index = {"count": 12, "factory": "Flat", "format": "vtl-index", "metric": "cosine",
             "spec": SPEC, "version": 1}
    put_json("index", "valid-description", index)
    put_json("index", "number", "42")
    put_json("index", "metric-number", dict(index, metric=1))

    params = {"algo": "knn", "c": 1.0, "gamma": 0.0, "iterations": 500, "k": 1,
              "learning_rate": 0.1, "max_depth": 25, "seed": 0, "trees": 100}
    classifier = {"format": "vtl-classifier", "version": 1, "algo": "knn", "params": params,
                  "num_classes": 2, "mean": [0.5, 0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5, 0.5]}
    put_json("classifier", "valid", classifier)
    put_json("classifier", "svm", dict(classifier, algo="svm_linear",
                                       params=dict(params, algo="svm_linear")))
    put_json("classifier", "mean-strings", dict(classifier, mean=["a"]))
    put_json("classifier", "null", "null")

    split = lambda path, cls, part: json.dumps({"class": cls, "path": path, "split": part})
    put_json("split", "valid", split("/d/a/1.png", "a", "train") + "\n" +
             split("/d/b/2.png", "b", "val") + "\n")
    put_json("split", "bad-split", split("/d/a/1.png", "a", "test") + "\n")
    put_json("split", "path-number", "{\"class\": \"a\", \"path\": 3, \"split\": \"val\"}\n")


def image_bytes(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def sample_image(mode="RGB", size=(12, 8)):
    image = Image.new("RGB", size, (200, 30, 60))
    for x in range(size[0]):
        image.putpixel((x, x % size[1]), (10, 220, 40))
    return image.convert(mode)


def png_header_only(width, height):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))


def image_seeds():
    rgb = sample_image()
    put("image", "rgb.png", image_bytes(rgb, "PNG"))
    put("image", "rgba.png", image_bytes(sample_image("RGBA"), "PNG"))
    put("image", "gray.png", image_bytes(sample_image("L"), "PNG"))
    put("image", "gray16.png", image_bytes(sample_image("L").convert("I;16"), "PNG"))
    put("image", "palette.png", image_bytes(sample_image("P"), "PNG"))
    put("image", "rgb.jpg", image_bytes(rgb, "JPEG", quality=80))
    put("image", "gray.jpg", image_bytes(sample_image("L"), "JPEG"))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90
    put("image", "exif-rotated.jpg", image_bytes(rgb, "JPEG", exif=exif.tobytes()))
    put("image", "rgb.bmp", image_bytes(rgb, "BMP"))
    put("image", "rgb.tiff", image_bytes(rgb, "TIFF"))
    put("image", "rgba.webp", image_bytes(sample_image("RGBA"), "WEBP", lossless=True))
    put("image", "rgb.gif", image_bytes(rgb, "GIF"))
    frames = [sample_image("RGBA", (16, 12)), sample_image("P", (16, 12))]
    put("image", "animated-transparent.gif",
        image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50))
    put("image", "animated.webp",
        image_bytes(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50))
    put("image", "cmyk.jpg", image_bytes(sample_image("CMYK"), "JPEG"))
    put("image", "progressive.jpg", image_bytes(rgb, "JPEG", progressive=True))
    jpeg = image_bytes(rgb, "JPEG")
    put("image", "extraneous-bytes.jpg", jpeg[:-2] + bytes(20) + jpeg[-2:])
    png = image_bytes(rgb, "PNG")
    icc = b"sRGB\0\0" + zlib.compress(b"not a profile")
    iccp = struct.pack(">I", len(icc)) + b"iCCP" + icc + struct.pack(">I", zlib.crc32(b"iCCP" + icc))
    put("image", "iccp.png", png[:33] + iccp + png[33:])
    put("image", "truncated.png", image_bytes(rgb, "PNG")[:60])
    put("image", "bomb-header.png", png_header_only(100000, 100000))
    put("image", "text", "not an image at all\n")


def multipart(fields, boundary="----vtlfuzzboundary"):
    body = b""
    for name, filename, content_type, content in fields:
        body += f"--{boundary}\r\n".encode()
        disposition = f'Content-Disposition: form-data; name="{name}"'
        if filename:
            disposition += f'; filename="{filename}"'
        body += disposition.encode() + b"\r\n"
        if content_type:
            body += f"Content-Type: {content_type}\r\n".encode()
        body += b"\r\n" + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post(path, body, content_type):
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


def get(path):
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()


def csv_seeds():
    put("csv", "plain", "img/a.png,cat\nimg/b.png,dog\n")
    put("csv", "header", "path,label\nimg/a.png,cat\nimg/b.png,dog\nimg/missing.png,dog\n")
    put("csv", "excel", "\ufeffFilename,Class\r\nimg/a.png,cat\r\nimg/b.png,dog\r\n")
    put("csv", "pandas", ",image,label\n0,\"img/a.png\",cat\n1,img/b.png,dog\n")
    put("csv", "is-valid", "name,label,is_valid\nimg/a.png,cat,False\nimg/b.png,dog,True\n"
        "img/a.png,dog,false\nimg/b.png,cat,1\n")
    put("csv", "split", "filename,class,split\nimg/a.png,cat,train\nimg/b.png,dog,Valid\n"
        "img/a.png,dog,TEST\nimg/b.png,cat,training\n")
    put("csv", "bad-split", "path,label,split\nimg/a.png,cat,holdout\n")
    put("csv", "short-row", "image,index,label\nimg/a.png,3\n")
    put("csv", "quotes", "\"img/a.png\",\"c\"\"at\"\n\"unterminated,dog\n")


def upload_seeds():
    png = image_bytes(sample_image(size=(20, 16)), "PNG")
    image = ("image", "query.png", "image/png", png)
    put("upload", "search", post("/api/search", *multipart([image])))
    put("upload", "search-k", post("/api/search", *multipart([image, ("k", "", "", b"3")])))
    put("upload", "search-bad-k", post("/api/search", *multipart([image, ("k", "", "", b"3x")])))
    put("upload", "search-not-image", post(
        "/api/search", *multipart([("image", "a.png", "image/png", b"GIF89a....")])))
    put("upload", "search-no-image", post("/api/search", *multipart([("k", "", "", b"3")])))
    put("upload", "search-not-multipart", post("/api/search", b"k=3", "application/x-www-form-urlencoded"))
    put("upload", "health", get("/api/health"))
    put("upload", "image-0", get("/api/image/0"))
    put("upload", "image-unknown", get("/api/image/999999"))
    put("upload", "page", get("/"))
    put("upload", "truncated", post("/api/search", *multipart([image]))[:150])
    put("upload", "keep-alive-twice", get("/api/health").replace(b"close", b"keep-alive") +
        get("/api/image/1"))


if __name__ == "__main__":
    pth_seeds()
    safetensors_seeds()
    npy_seeds()
    json_seeds()
    csv_seeds()
    image_seeds()
    upload_seeds()
