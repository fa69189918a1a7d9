#!/usr/bin/python3
"""Benchmark: pssupervise analyze vs clamdscan --multiscan and --stream, one clamd, one corpus.

Prints wall-clock means (hyperfine) and the ratios pssupervise / clamdscan (< 1.0: faster).
Usage: clamd_bench.py PSSUPERVISE_BINARY [--files N] [--runs N]
"""
import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
os.environ.setdefault("PSS_BINARY", "unused")
os.environ.setdefault("PSS_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), ".."))
from common import EICAR, Clamd  # noqa: E402


def make_corpus(root, n, seed=1):
    """n files of mixed kinds and sizes (512 B to 4 MiB), deterministic for a seed:
    random binary 35 %, ELF executables copied from /usr/bin 20 %, text 20 %,
    zip archives 15 %, EICAR-carrying files 10 %."""
    rng = random.Random(seed)
    elves = sorted(p for p in (os.path.join("/usr/bin", f) for f in os.listdir("/usr/bin"))
                   if os.path.isfile(p) and not os.path.islink(p)
                   and open(p, "rb").read(4) == b"\x7fELF")
    words = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod".split()
    total = 0
    for i in range(n):
        size = int(2 ** rng.uniform(9, 22))  # log-uniform 512 B .. 4 MiB
        kind = rng.random()
        if kind < 0.35:
            data = rng.randbytes(size)
        elif kind < 0.55:
            data = open(elves[rng.randrange(len(elves))], "rb").read()
        elif kind < 0.75:
            data = b" ".join(rng.choice(words) for _ in range(size // 6))[:size]
        elif kind < 0.90:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                for k in range(rng.randint(1, 5)):
                    z.writestr(f"m{k}.txt", b" ".join(rng.choice(words)
                                                     for _ in range(size // 30 + 1)))
            data = buf.getvalue()
        else:
            data = EICAR + rng.randbytes(rng.randint(0, 4096))
        sub = os.path.join(root, f"d{i % 7}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"f{i:04d}.bin"), "wb") as f:
            f.write(data)
        total += len(data)
    return total


def hyperfine(commands, runs, out_json):
    args = ["hyperfine", "--runs", str(runs), "--warmup", "1", "-N", "--ignore-failure",
            "--export-json", out_json]
    for name, cmd in commands:
        args += ["-n", name, cmd]
    subprocess.run(args, check=True)
    with open(out_json) as f:
        return {r["command"]: r for r in json.load(f)["results"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--files", type=int, default=400)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not shutil.which("hyperfine"):
        sys.exit("hyperfine is missing: run env/bootstrap")
    tmp = tempfile.mkdtemp(prefix="pss-bench-")
    summary = []
    try:
        corpus = os.path.join(tmp, "corpus")
        total = make_corpus(corpus, args.files)
        print(f"corpus: {args.files} files, {total / 1e6:.1f} MB in {corpus}")
        print(f"machine: {os.cpu_count()} cores; clamd MaxThreads 2; pssupervise --concurrency 2")
        # cold: clamd's clean-file cache off, every file really scanned (a bounty stream never
        # repeats an artifact); warm: the same corpus again, clamd answers from its cache, so
        # only per-file overhead is compared.
        for mode, extra in (("cold", ["DisableCache yes"]), ("warm", [])):
            clamd = Clamd(tmp, extra_config=extra, name=f"clamd-{mode}")
            try:
                conf = os.path.join(tmp, f"clamdscan-{mode}.conf")
                with open(conf, "w") as f:
                    f.write(f"LocalSocket {clamd.socket}\n")
                os.environ["CLAMD_SOCKET"] = clamd.socket
                pss = f"{args.binary} analyze --engine clamav --concurrency 2 {corpus}"
                results = hyperfine([
                    ("pssupervise", pss),
                    ("clamdscan --multiscan",
                     f"clamdscan -c {conf} --multiscan --no-summary --quiet {corpus}"),
                    ("clamdscan --stream",
                     f"clamdscan -c {conf} --stream --no-summary --quiet {corpus}"),
                ], args.runs, os.path.join(tmp, f"hyperfine-{mode}.json"))
            finally:
                clamd.stop()
            mean = {k: v["mean"] for k, v in results.items()}
            summary.append(f"[{mode}] {'command':<24}{'mean s':>10}{'files/s':>10}")
            for k, v in mean.items():
                summary.append(f"[{mode}] {k:<24}{v:>10.3f}{args.files / v:>10.0f}")
            for base in ("clamdscan --multiscan", "clamdscan --stream"):
                summary.append(f"[{mode}] ratio pssupervise / {base}: "
                               f"{mean['pssupervise'] / mean[base]:.2f}")
        print()
        print("\n".join(summary))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
