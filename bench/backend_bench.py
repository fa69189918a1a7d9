#!/usr/bin/python3
"""Benchmark: `analyze --backend process` against `--backend local`, same corpus, clamav.

Each command starts its own engines, as a user's run does: `local` one clamd, `process` one
clamd per worker (each with clamav's default MaxThreads 2). A third command runs `process`
with CLAMAV_MAX_THREADS=1, so that it has no more clamd threads than `local`: what is left
is the cost, or gain, of the processes themselves. Prints wall-clock means (hyperfine) and
the ratios to local (< 1.0: faster than local).
Usage: backend_bench.py PSSUPERVISE_BINARY [--files N] [--runs N] [--concurrency N]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clamd_bench import make_corpus  # noqa: E402

# Every figure here is of scans: the result cache (on by default) would answer repeats.
os.environ.setdefault("PSS_CACHE", "off")


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
    ap.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    if not shutil.which("hyperfine"):
        sys.exit("hyperfine is missing: run env/bootstrap")
    tmp = tempfile.mkdtemp(prefix="pss-bench-")
    try:
        corpus = os.path.join(tmp, "corpus")
        total = make_corpus(corpus, args.files)
        runtime = os.path.join(tmp, "runtime")
        os.mkdir(runtime, 0o700)
        os.environ["CLAMAV_RUNTIME_DIR"] = runtime
        os.environ["TMPDIR"] = tmp
        for k in ("CLAMD_SOCKET", "CLAMD_HOST", "CLAMD_PORT"):
            os.environ.pop(k, None)
        n = args.concurrency
        print(f"corpus: {args.files} files, {total / 1e6:.1f} MB in {corpus}")
        print(f"machine: {os.cpu_count()} cores; --concurrency {n} (local: {n} scans at once in "
              f"one process, one clamd; process: {n} workers, one clamd each)")
        base = f"{args.binary} --engine clamav analyze --format json --concurrency {n}"
        results = hyperfine([
            ("local", f"{base} --backend local {corpus}"),
            ("process", f"{base} --backend process {corpus}"),
            ("process, 1 clamd thread each",
             f"/usr/bin/env CLAMAV_MAX_THREADS=1 {base} --backend process {corpus}"),
        ], args.runs, os.path.join(tmp, "hyperfine.json"))
        mean = {k: v["mean"] for k, v in results.items()}
        print()
        print(f"{'backend':<32}{'mean s':>10}{'stddev':>10}{'files/s':>10}{'/ local':>10}")
        for k, r in results.items():
            print(f"{k:<32}{r['mean']:>10.3f}{r['stddev'] or 0:>10.3f}"
                  f"{args.files / r['mean']:>10.0f}{r['mean'] / mean['local']:>10.2f}")
        print(f"ratio process / local: {mean['process'] / mean['local']:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
