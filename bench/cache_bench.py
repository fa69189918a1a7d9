#!/usr/bin/python3
"""Benchmark: what the result cache buys and costs, per file, on a repeated corpus.

- testvendor (a Windows one-shot engine under Wine, if its .exe is given): a file answered
  from the cache vs scanned (target: a hit >= 50x faster);
- clamav (our own clamd): the same, and what a miss adds to a scan (a lookup that finds
  nothing, then the write): miss vs --cache off (target: <= 3% of the per-file time).

Per-file cost = (T(N files) - T(1 file)) / (N - 1): start-up (the engine, the cache file) is paid
by every method and left out. Rounds interleave the methods; medians [min-max] are printed.
Usage: cache_bench.py PSSUPERVISE [--testvendor EXE] [--files N] [--rounds N]
"""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time

WINE_ENV = {"WINEDEBUG": "-all", "WINEDLLOVERRIDES": "mscoree,mshtml=", "LC_ALL": "C.UTF-8"}


def run(cmd, env):
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t
    if r.returncode not in (0, 1):
        unknown = [l for l in r.stdout.decode(errors="replace").splitlines() if "unknown" in l]
        raise SystemExit(f"{' '.join(cmd)}: exit {r.returncode}\n" + "\n".join(unknown[:5]) +
                         f"\n{r.stderr.decode(errors='replace')[-2000:]}")
    return elapsed


def make_corpus(tmp, n):
    corpus = os.path.join(tmp, "corpus")
    one = os.path.join(tmp, "one")
    os.makedirs(corpus)
    os.makedirs(one)
    rnd = random.Random(7)
    for i in range(n):
        with open(os.path.join(corpus, f"f{i:04d}.bin"), "wb") as f:
            f.write(rnd.randbytes(rnd.randint(1024, 8192)))
    shutil.copy(os.path.join(corpus, "f0000.bin"), one)
    return corpus, one


def summary(values):
    return f"{statistics.median(values):8.3f} [{min(values):.3f}-{max(values):.3f}]"


def measure(binary, engine, env, corpus, one, n, rounds, tmp, methods):
    """Per-file ms of each method by round. A method: (name, extra args, cache state)."""
    per = {name: [] for name, _, _ in methods}
    for r in range(rounds):
        for name, args, state in methods:
            times = {}
            for label, target in (("n", corpus), ("1", one)):
                cache = os.path.join(tmp, f"cache-{engine}-{name.replace(' ', '-')}.sqlite")
                if state == "fresh":
                    for suffix in ("", "-wal", "-shm"):
                        if os.path.exists(cache + suffix):
                            os.remove(cache + suffix)
                elif state == "filled" and r == 0 and label == "n":
                    run([binary, "--engine", engine, "--cache", cache, "analyze", corpus], env)
                where = ["--cache", cache] if state else []
                cmd = [binary, "--engine", engine, *where, *args, "analyze", target]
                times[label] = run(cmd, env)
            per[name].append((times["n"] - times["1"]) / (n - 1) * 1000)
    return per


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--testvendor")
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pss-cachebench-")
    started = time.monotonic()
    try:
        corpus, one = make_corpus(tmp, args.files)
        n = args.files
        print(f"{n} files of 1-8 KiB, random bytes; per file = (T(n) - T(1)) / (n - 1), ms; "
              f"medians of {args.rounds} rounds [min-max]")

        env = dict(os.environ, CLAMAV_RUNTIME_DIR=os.path.join(tmp, "clamav-run"))
        os.makedirs(env["CLAMAV_RUNTIME_DIR"], mode=0o700)
        per = measure(args.binary, "clamav", env, corpus, one, n, args.rounds, tmp, [
            ("off", ["--cache", "off"], None),
            ("miss", [], "fresh"),
            ("hit", [], "filled"),
        ])
        off, miss, hit = (statistics.median(per[k]) for k in ("off", "miss", "hit"))
        print("clamav")
        for k in ("off", "miss", "hit"):
            print(f"  {k:<6}{summary(per[k])}")
        print(f"  a miss adds {100 * (miss / off - 1):+.1f}% to a scan (target <= 3%); "
              f"a hit is {off / hit:.1f}x faster than a scan")

        if args.testvendor:
            state = os.path.join(tmp, "tv-state")
            os.makedirs(state)
            tv_env = dict(os.environ, **WINE_ENV, TESTVENDOR_STATE_HOME=state,
                          TESTVENDOR_PATH=os.path.dirname(os.path.abspath(args.testvendor)))
            tv_env.pop("DISPLAY", None)
            run([args.binary, "--engine", "testvendor", "--cache", "off", "analyze", one],
                tv_env)  # the prefix, once
            per = measure(args.binary, "testvendor", tv_env, corpus, one, n, args.rounds, tmp, [
                ("scan", [], "fresh"),
                ("hit", [], "filled"),
            ])
            scan, hit = (statistics.median(per[k]) for k in ("scan", "hit"))
            print("testvendor (Wine)")
            for k in ("scan", "hit"):
                print(f"  {k:<6}{summary(per[k])}")
            print(f"  a hit is {scan / hit:.0f}x faster than a scan (target >= 50x)")
        print(f"({time.monotonic() - started:.0f} s; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
