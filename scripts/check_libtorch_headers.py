#!/usr/bin/env python3
"""Compiles every translation unit of a configured vtl build (its compile_commands.json)
with -fsyntax-only against another LibTorch's headers, to keep one source tree building
on LibTorch 1.13 (Debian 12, CI) and 2.x (the CUDA machines).

  scripts/check_libtorch_headers.py BUILD_DIR INCLUDE_DIR [--std gnu++20]
      [--extra-include DIR ...] [--jobs N] [PATH_PREFIX ...]

INCLUDE_DIR holds the other LibTorch's ATen/, c10/ and torch/ (for example Debian's
libtorch-dev unpacked: see scripts/check_libtorch2.sh). Its folders are put first on the
include path, so they win over the build's own LibTorch. PATH_PREFIX limits the check to
sources under those folders of the repository (default: all). Prints OK/FAIL per file,
the first errors of each failure, and a summary line; exits 1 if any file failed.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

parser = argparse.ArgumentParser()
parser.add_argument("build_dir")
parser.add_argument("include_dir")
parser.add_argument("prefixes", nargs="*")
parser.add_argument("--std", default="", help="replaces the build's -std= (e.g. gnu++20)")
parser.add_argument("--extra-include", action="append", default=[],
                    help="searched before INCLUDE_DIR (e.g. a newer fmt)")
parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
args = parser.parse_intermixed_args()

source_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
commands = json.load(open(os.path.join(args.build_dir, "compile_commands.json")))
first = [f"-I{d}" for d in args.extra_include] + [
    f"-I{args.include_dir}", f"-I{args.include_dir}/torch/csrc/api/include"]


def syntax_only(argv):
    """The build's command with our include folders first, no output, no precompiled header."""
    out, i = [argv[0]] + first, 1
    while i < len(argv):
        a = argv[i]
        if a in ("-o", "-MF", "-MT") or (a == "-include" and "cmake_pch" in argv[i + 1]):
            i += 2
            continue
        if a in ("-c", "-MD", "-Winvalid-pch") or a.startswith("-Xclang"):
            i += 1
            continue
        if a.startswith("-std=") and args.std:
            a = "-std=" + args.std
        out.append(a)
        i += 1
    return out + ["-fsyntax-only"]


jobs = []
for entry in commands:
    relative = os.path.relpath(entry["file"], source_root)
    if relative.startswith("..") or not os.path.exists(entry["file"]):
        continue  # generated or removed since the build was configured
    if args.prefixes and not any(relative.startswith(p) for p in args.prefixes):
        continue
    argv = shlex.split(entry["command"]) if "command" in entry else entry["arguments"]
    jobs.append((relative, syntax_only(argv), entry["directory"]))


def check(job):
    relative, argv, directory = job
    result = subprocess.run(argv, cwd=directory, capture_output=True, text=True)
    return relative, result.returncode, result.stderr


failed = 0
with ThreadPoolExecutor(args.jobs) as pool:
    for relative, code, errors in pool.map(check, jobs):
        print(("OK   " if code == 0 else "FAIL ") + relative, flush=True)
        if code:
            failed += 1
            print("\n".join([l for l in errors.splitlines() if "error" in l][:10]), flush=True)
print(f"{len(jobs) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
