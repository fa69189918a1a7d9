#!/usr/bin/python3
"""Benchmark: the same files through the test vendor as a JSON-RPC server kept alive by the
supervisor (engine testvendor-server) and as a one-shot CLI (engine testvendor), both under
Wine with a persistent wineserver, same prefix folder layout, measured in one run.

Per-file cost = (T(n) - T(1)) / (n - 1): start-up (prefix, wineserver, server start, version)
is paid once by both and left out. Prints per-file cost, files/s and the ratio.
Usage: server_bench.py PSSUPERVISE TESTVENDOR_EXE TESTVENDOR_SERVER_EXE [--files N] [--runs N]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

# Every figure here is of scans: the result cache (on by default) would answer repeats.
os.environ.setdefault("PSS_CACHE", "off")


def timed(cmd, env, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - t)
        if r.returncode not in (0, 1):
            raise SystemExit(f"{cmd} failed ({r.returncode}): {r.stderr.decode()[-2000:]}")
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("testvendor")
    ap.add_argument("server")
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    # The server's per-file cost is ~1 ms: over 200 files it drowns in start-up noise, so it
    # is also measured over more files (the same small files, repeated).
    ap.add_argument("--server-files", type=int, default=2000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pss-serverbench-")
    try:
        corpus = os.path.join(tmp, "corpus")
        os.makedirs(corpus)
        for i in range(args.files):
            with open(os.path.join(corpus, f"f{i:03d}.txt"), "wb") as f:
                f.write(b"small file %d\n" % i * 20)
        big = os.path.join(tmp, "big")
        os.makedirs(big)
        for i in range(args.server_files):
            with open(os.path.join(big, f"f{i:05d}.txt"), "wb") as f:
                f.write(b"small file %d\n" % i * 20)
        one = os.path.join(tmp, "one")
        os.makedirs(one)
        shutil.copy(os.path.join(corpus, "f000.txt"), one)
        runtime = os.path.join(tmp, "run")
        os.makedirs(runtime, mode=0o700)
        env = dict(os.environ,
                   TESTVENDOR_STATE_HOME=os.path.join(tmp, "state-oneshot"),
                   TESTVENDOR_PATH=os.path.dirname(os.path.abspath(args.testvendor)),
                   TESTVENDOR_SERVER_STATE_HOME=os.path.join(tmp, "state-server"),
                   TESTVENDOR_SERVER_PATH=os.path.dirname(os.path.abspath(args.server)),
                   TESTVENDOR_SERVER_RUNTIME_DIR=runtime)
        env.pop("DISPLAY", None)
        results = {}
        for label, engine in [("one-shot CLI (testvendor)", "testvendor"),
                              ("JSON-RPC server (testvendor-server)", "testvendor-server")]:
            for conc in (1, 2):
                cmd = [args.binary, "--engine", engine, "analyze", "--concurrency", str(conc)]
                subprocess.run(cmd + [one], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # creates the prefix once
                t_all = timed(cmd + [corpus], env, args.runs)
                t_one = timed(cmd + [one], env, args.runs)
                t_big = timed(cmd + [big], env, args.runs) if engine == "testvendor-server" \
                    else None
                results[(label, conc)] = (t_all, t_one, t_big)

        n = args.files
        print(f"{n} small files under Wine (persistent wineserver); median of {args.runs} runs; "
              "per file = (T(n) - T(1)) / (n - 1)")
        print(f"(the server's per-file cost from T({args.server_files}) instead of T(n))")
        print(f"{'engine':<38}{'conc':>5}{'T(n) s':>9}{'T(1) s':>9}{'T(big) s':>9}"
              f"{'per file ms':>13}{'files/s':>9}")
        per = {}
        for (label, conc), (t_all, t_one, t_big) in results.items():
            if t_big is None:
                per[(label, conc)] = max((t_all - t_one) / (n - 1), 1e-6)
            else:
                per[(label, conc)] = max((t_big - t_one) / (args.server_files - 1), 1e-6)
            big_text = f"{t_big:>9.2f}" if t_big is not None else f"{'-':>9}"
            print(f"{label:<38}{conc:>5}{t_all:>9.2f}{t_one:>9.2f}{big_text}"
                  f"{per[(label, conc)] * 1000:>13.2f}{1 / per[(label, conc)]:>9.0f}")
        for conc in (1, 2):
            cli = per[("one-shot CLI (testvendor)", conc)]
            srv = per[("JSON-RPC server (testvendor-server)", conc)]
            print(f"--concurrency {conc}: server per-file cost / one-shot = {srv / cli:.3f}"
                  f"  (server {cli / srv:.1f}x faster)")
    finally:
        subprocess.run(["pkill", "-f", tmp], stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
