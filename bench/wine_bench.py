#!/usr/bin/python3
"""Benchmark: the per-file cost of `pssupervise analyze --engine testvendor` against a plain
shell loop of `wine testvendor.exe FILE`, with a persistent wineserver and without one.

Per-file cost = (time for N files - time for 1 file) / (N - 1): start-up (prefix check,
wineserver, version probe) is paid once by every method and left out. Prints the ratios.
Usage: wine_bench.py PSSUPERVISE TESTVENDOR_EXE [--files N] [--runs N]
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

ENV_BASE = {"WINEDEBUG": "-all", "WINEDLLOVERRIDES": "mscoree,mshtml=", "LC_ALL": "C.UTF-8"}


def timed(cmd, env, runs, shell=False):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, shell=shell, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("testvendor")
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pss-winebench-")
    try:
        state = os.path.join(tmp, "state")
        prefix = os.path.join(state, "wineprefix")
        os.makedirs(state)
        corpus = os.path.join(tmp, "corpus")
        os.makedirs(corpus)
        for i in range(args.files):
            with open(os.path.join(corpus, f"f{i:03d}.txt"), "wb") as f:
                f.write(b"small file %d\n" % i * 20)
        one = os.path.join(tmp, "one")
        os.makedirs(one)
        shutil.copy(os.path.join(corpus, "f000.txt"), one)

        env = dict(os.environ, **ENV_BASE, WINEPREFIX=prefix, TESTVENDOR_STATE_HOME=state,
                   TESTVENDOR_PATH=os.path.dirname(os.path.abspath(args.testvendor)))
        env.pop("DISPLAY", None)
        # Create the prefix once (pssupervise does it, as a user's first run would).
        subprocess.run([args.binary, "--engine", "testvendor", "analyze", one], env=env,
                       stdout=subprocess.DEVNULL, check=False)
        exe = os.path.abspath(args.testvendor)
        loop = 'for f in "$0"/*; do wine "%s" "$f" >/dev/null; done' % exe
        # Without a persistent server, Wine shuts down 3 s after its last program (wineserver's
        # default): files that arrive further apart each pay a cold start. `wineserver -k`
        # after each run reproduces that without the 3 s wait.
        cold_loop = ('for f in "$0"/*; do wine "%s" "$f" >/dev/null; wineserver -k; done'
                     % exe)

        results = {}
        for name, cmd, shell in [
            ("pssupervise --concurrency 1", [args.binary, "--engine", "testvendor", "analyze",
                                             "--concurrency", "1"], False),
            ("pssupervise --concurrency 2", [args.binary, "--engine", "testvendor", "analyze",
                                             "--concurrency", "2"], False),
        ]:
            t_all = timed(cmd + [corpus], env, args.runs)
            t_one = timed(cmd + [one], env, args.runs)
            results[name] = (t_all, t_one)

        # Plain loops: with a persistent wineserver started first and killed after...
        server = subprocess.Popen(["wineserver", "-p", "-f"], env=env)
        time.sleep(0.5)
        subprocess.run(["wine", exe, "--version"], env=env, stdout=subprocess.DEVNULL)  # warm
        t_all = timed(["sh", "-c", loop, corpus], env, args.runs)
        t_one = timed(["sh", "-c", loop, one], env, args.runs)
        results["wine loop, persistent wineserver"] = (t_all, t_one)
        subprocess.run(["wineserver", "-k"], env=env)
        server.wait(30)
        subprocess.run(["wineserver", "-w"], env=env)
        # ...and without one (each run starts Wine cold).
        t_all = timed(["sh", "-c", cold_loop, corpus], env, 1)
        t_one = timed(["sh", "-c", cold_loop, one], env, 1)
        results["wine loop, no persistent wineserver"] = (t_all, t_one)
        subprocess.run(["wineserver", "-k"], env=env)

        n = args.files
        print(f"{n} small files; median of {args.runs} runs; per file = (T(n) - T(1)) / (n - 1)")
        print(f"{'method':<38}{'T(n) s':>9}{'T(1) s':>9}{'per file ms':>13}")
        per = {}
        for name, (t_all, t_one) in results.items():
            per[name] = (t_all - t_one) / (n - 1)
            print(f"{name:<38}{t_all:>9.2f}{t_one:>9.2f}{per[name] * 1000:>13.1f}")
        base_p = per["wine loop, persistent wineserver"]
        base_n = per["wine loop, no persistent wineserver"]
        for name in ("pssupervise --concurrency 1", "pssupervise --concurrency 2"):
            print(f"ratio {name} / persistent loop: {per[name] / base_p:.2f}"
                  f"   speed-up vs no-server loop: {base_n / per[name]:.1f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
