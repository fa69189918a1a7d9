#!/usr/bin/python3
"""Benchmark: what the engine lifecycle buys.

yara: 100 files against 5,000 generated rules. Per-file cost of `analyze --engine yara` (rules
compiled once by the setup, each scan `yara -C`) against the same engine compiling its rules
for every file (the manifest before `setup`), and against a plain shell loop of `yara -C` on
rules compiled once. Per-file cost = (time for N files - time for 1 file) / (N - 1): start-up
(and the one compilation) is left out.

pool: testvendor-server under Wine with TESTVENDOR_SERVER_WORK_MS of CPU work per scan, one
scan at a time per server; files/s with 1 and with 2 instances (the same start-up subtraction).

Prints ratios against the baselines measured in the same run, never pass/fail.
Usage: lifecycle_bench.py PSSUPERVISE [--part yara|pool|all] [--runs N] [--wine-state DIR]
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, env, runs, shell=False):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(cmd, env=env, shell=shell, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times), r.stdout.decode(errors="replace")


def per_file(cmd_for, env, n, runs, shell=False):
    """(seconds per file, output of the N-file run): N files minus 1 file, over N - 1."""
    t1, _ = timed(cmd_for(1), env, runs, shell)
    tn, out = timed(cmd_for(n), env, runs, shell)
    return (tn - t1) / (n - 1), out


def corpus(tmp, n, hits, name):
    """n files in tmp/name-N and tmp/name-1; `hits` of them carry a matching string."""
    full = os.path.join(tmp, f"{name}-{n}")
    one = os.path.join(tmp, f"{name}-1")
    os.makedirs(full)
    os.makedirs(one)
    rng = random.Random(7)
    for i in range(n):
        data = bytes(rng.getrandbits(8) for _ in range(4096))
        if i < hits:
            data += b"pss-bench-string-0042"
        with open(os.path.join(full, f"f{i:03d}.bin"), "wb") as f:
            f.write(data)
    shutil.copy(os.path.join(full, "f099.bin" if n > 99 else "f000.bin"), one)
    return full, one


def yara_part(binary, runs):
    tmp = tempfile.mkdtemp(prefix="pss-lifebench-")
    try:
        rules = os.path.join(tmp, "rules")
        os.makedirs(rules)
        with open(os.path.join(rules, "pssupervise.yar"), "w") as f:
            for i in range(5000):
                f.write(f'rule Bench_{i:04d} {{ strings: $a = "pss-bench-string-{i:04d}" '
                        f'$b = {{ {i % 256:02x} {(i * 7) % 256:02x} 4? {(i * 13) % 256:02x} '
                        f'{(i * 31) % 256:02x} }} condition: $a and $b }}\n')
        compiled = os.path.join(tmp, "rules.yarc")
        subprocess.run(["yarac", "--no-warnings", os.path.join(rules, "pssupervise.yar"),
                        compiled], check=True)
        n = 100
        full, one = corpus(tmp, n, 0, "c")
        # Without setup: the manifest as it was, compiling for every file.
        old = os.path.join(tmp, "engines", "yara")
        os.makedirs(old)
        with open(os.path.join(SOURCE, "engines", "yara", "engine.json")) as f:
            m = json.load(f)
        m.pop("setup")
        m["scan"]["argv"] = ["${YARA_PATH}/yara", "--no-warnings", "--fast-scan", "--timeout=60",
                             "${YARA_DATA_HOME}/pssupervise.yar", "{path}"]
        with open(os.path.join(old, "engine.json"), "w") as f:
            json.dump(m, f)
        env = dict(os.environ, YARA_DATA_HOME=rules, YARA_CACHE_HOME=os.path.join(tmp, "cache"))
        dirs = {1: one, n: full}
        ours, _ = per_file(lambda k: [binary, "--engine", "yara", "analyze", dirs[k]], env, n,
                           runs)
        before, _ = per_file(lambda k: [binary, "--engines-dir", os.path.join(tmp, "engines"),
                                        "--engine", "yara", "analyze", dirs[k]], env, n, runs)
        loop = ('for f in "$0"/*; do yara --no-warnings --fast-scan -C %s "$f"; done' % compiled)
        plain, _ = per_file(lambda k: f"sh -c '{loop}' {dirs[k]}", env, n, runs, shell=True)
        print(f"yara, 100 files, 5,000 rules (median of {runs} runs, per file):")
        print(f"  analyze, rules compiled once (setup):  {ours * 1000:8.2f} ms")
        print(f"  analyze, rules compiled per file:      {before * 1000:8.2f} ms  "
              f"({before / ours:.1f}x the setup's)")
        print(f"  shell loop of yara -C:                 {plain * 1000:8.2f} ms  "
              f"(setup / loop = {ours / plain:.2f})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def pool_part(binary, runs, wine_state, work_ms, n):
    tmp = tempfile.mkdtemp(prefix="pss-poolbench-")
    try:
        full, one = corpus(tmp, n, 0, "p")
        runtime = os.path.join(tmp, "rt")
        os.makedirs(runtime, mode=0o700)
        build = os.path.dirname(os.path.abspath(binary))
        state = os.path.join(wine_state, "testvendor-server")
        os.makedirs(state, exist_ok=True)
        base = dict(os.environ, TESTVENDOR_SERVER_STATE_HOME=state,
                    TESTVENDOR_SERVER_PATH=os.path.join(build, "wine", "testvendor"),
                    TESTVENDOR_SERVER_RUNTIME_DIR=runtime, TESTVENDOR_SERVER_WORK_MS=str(work_ms),
                    TMPDIR=tmp)
        dirs = {1: one, n: full}
        rate = {}
        for k in (1, 2):
            env = dict(base, TESTVENDOR_SERVER_INSTANCES=str(k))
            t, _ = per_file(lambda m: [binary, "--engine", "testvendor-server", "analyze",
                                       "--concurrency", "8", dirs[m]], env, n, runs)
            rate[k] = 1 / t
        print(f"testvendor-server pool, {n} files, {work_ms} ms of CPU per scan "
              f"(median of {runs} runs, start-up left out):")
        print(f"  1 instance:  {rate[1]:7.1f} files/s")
        print(f"  2 instances: {rate[2]:7.1f} files/s  ({rate[2] / rate[1]:.2f}x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--part", choices=["yara", "pool", "all"], default="all")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--wine-state", default=os.environ.get("PSS_WINE_STATE",
                                                           "/tmp/pss-bench-wine-state"))
    ap.add_argument("--work-ms", type=int, default=50)
    ap.add_argument("--pool-files", type=int, default=200)
    args = ap.parse_args()
    if args.part in ("yara", "all"):
        yara_part(os.path.abspath(args.binary), args.runs)
    if args.part in ("pool", "all"):
        pool_part(os.path.abspath(args.binary), args.runs, args.wine_state, args.work_ms,
                  args.pool_files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
