#!/usr/bin/python3
"""Benchmark: the engine lifecycle (setup, instance pools, reloads), in three parts.

yara: 5,000 generated rules, 100 files (5 matching). Per-file cost, (T(100) - T(1)) / 99, of
  (a) `pssupervise --engine yara analyze` with the shipped manifest (yarac once in `setup`,
      each scan `yara -C {prepared}/rules.yarc`), (b) the old compile-per-scan manifest (each
      scan `yara RULES.yar FILE`, a copy of the manifest in a temp --engines-dir) and (c) a
      plain shell loop of `yara -C` over rules compiled once by yarac beforehand. (a) and (b)
      run with --concurrency 1, as the loop does; (a) with --concurrency 2 is shown too, and
      (d), a shell loop of yara compiling for every file, as context: (d)/(c) is the most
      (b)/(a) can be. All must find the same files with the same rules.
pool: 200 small files (4 EICAR) through `--engine testvendor-server analyze --concurrency 8`
  with every scan doing 50 ms of single-threaded CPU work (TESTVENDOR_SERVER_WORK_MS), one
  scan at a time per server, with 1 and with 2 server instances (TESTVENDOR_SERVER_INSTANCES).
  Throughput excludes start-up: the answers printed after the log says every instance is
  ready, over the time from that line to the last answer; (n - 1) / (T(n) - T(1)) is shown
  too, as a cross-check.
reload: `pssupervise webhook` (clamav, a copy of its database) answering at a loopback
  receiver; a steady stream of signed data: bounties at --rate per second for --seconds;
  latency = POST sent -> answer received at the receiver. Once without a reload, once with a
  SIGHUP halfway after adding a new .ndb signature. The reload window runs from the SIGHUP
  to the log's "new definitions in use"; its bounties are those in flight during it.

Every part runs --rounds rounds; a ratio is computed within a round (runs made moments apart
on a machine that may be busy) and shown as the median of the rounds [min-max].
Usage: lifecycle_bench.py PSSUPERVISE [--part yara|pool|reload|all]... [--rounds N]
       [--testvendor-server EXE] [--wine-state DIR] [--rate N] [--seconds N]
(--part may be repeated; --testvendor-server defaults to wine/testvendor/testvendor-server.exe
next to PSSUPERVISE; --wine-state keeps the pool's Wine prefix across runs.)
"""
import argparse
import http.client
import json
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "integration"))
os.environ.setdefault("PSS_BINARY", "unused")
os.environ.setdefault("PSS_SOURCE_ROOT", SOURCE_ROOT)
from common import EICAR, live_pids, pid_alive  # noqa: E402
from test_webhook import SECRET, Receiver, sign  # noqa: E402 (Receiver checks with SECRET)

# Every figure here is of scans: the result cache (on by default) would answer repeats.
os.environ.setdefault("PSS_CACHE", "off")

BENCH_SIGNATURE = "PssBench:0:*:50535342454e4348"  # hex of PSSBENCH
BENCH_SAMPLE = b"a file carrying PSSBENCH, unknown to the shipped database"


def load():
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def spread(values):
    values = sorted(values)
    return statistics.median(values), values[0], values[-1]


def percentile(values, p):
    """Nearest-rank percentile: the smallest value with at least p % of values at or below."""
    values = sorted(values)
    k = max(0, min(len(values) - 1, -(-len(values) * p // 100) - 1))
    return values[int(k)]


def goal(med, lo, hi, target, at_most):
    if at_most:
        ok_all, ok_med = hi <= target, med <= target
        sign_ = "<="
    else:
        ok_all, ok_med = lo >= target, med >= target
        sign_ = ">="
    verdict = "met in every round" if ok_all else "met (median)" if ok_med else "NOT met"
    return f"target {sign_} {target:g}: {verdict}"


def remove_tree(path):
    """rmtree, after making every folder writable again: a setup's prepared folders are
    read-only (0555), which stops a user other than root from removing their files."""
    for root, dirs, _ in os.walk(path):
        for d in dirs:
            p = os.path.join(root, d)
            if not os.path.islink(p):
                try:
                    os.chmod(p, 0o700)
                except OSError:
                    pass
    shutil.rmtree(path, ignore_errors=True)


def leftovers(tmp):
    """Processes still running with our temp dir in their environment (wine, clamd, a
    server): reported and killed by pid; there should be none."""
    pids = [p for p in live_pids("environ", tmp.encode()) if p != os.getpid()]
    pids += [p for p in live_pids("cmdline", tmp.encode()) if p != os.getpid() and p not in pids]
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            print(f"warning: left running: pid {pid}: {cmd[:200]} (killed)")
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def timed_run(cmd, env, ok=(0, 1)):
    """(seconds, stdout) of one run to its end; a run failing otherwise stops the bench."""
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t
    if r.returncode not in ok:
        sys.exit(f"{cmd} failed ({r.returncode}):\n{r.stderr.decode(errors='replace')[-3000:]}")
    return elapsed, r.stdout.decode(errors="replace")


def malicious_lines(out):
    """{(file name, malware name)} from analyze's "path: malicious NAME" lines."""
    found = set()
    for line in out.splitlines():
        path, _, rest = line.rpartition(": ")
        words = rest.split()
        if words[:1] == ["malicious"]:
            found.add((os.path.basename(path), words[1] if len(words) > 1 else ""))
    return found


# ----------------------------------------------------------------------------------- yara --

def hex_pattern(b):
    """b[0:4] ?? b[4:8] [2-4] b[8:12]: a wildcard and a jump, as real rule sets have."""
    h = lambda part: " ".join("%02X" % x for x in part)  # noqa: E731
    return f"{h(b[:4])} ?? {h(b[4:8])} [2-4] {h(b[8:])}"


def make_rules(path, n, rng):
    """n rules, each with meta, a distinct text string, a distinct `ascii wide nocase` string
    and a distinct hex pattern; returns [(name, text, wide text, hex bytes)]."""
    rules = []
    with open(path, "w") as f:
        f.write("// generated by bench/lifecycle_bench.py\n\n")
        for i in range(n):
            name = f"Bench_{i:05d}"
            text = f"pssbench-{i:05d}-{rng.randbytes(6).hex()}"
            wide = f"Bench family {i} marker {rng.randbytes(4).hex()}"
            hexb = rng.randbytes(12)
            rules.append((name, text, wide, hexb))
            f.write(f'rule {name}\n{{\n'
                    f'    meta:\n        description = "generated rule {i}"\n'
                    f'        author = "lifecycle_bench"\n'
                    f'    strings:\n        $s = "{text}"\n'
                    f'        $t = "{wide}" ascii wide nocase\n'
                    f'        $h = {{ {hex_pattern(hexb)} }}\n'
                    f'    condition:\n        $s or ($t and $h) or '
                    f'(uint16(0) == 0x5A4D and filesize < 64KB and #h > 2)\n}}\n\n')
    return rules


def make_yara_files(corpus, n, rules, rng):
    """n files of 1-64 KiB (random bytes or text); 5 match a rule (4 by its text string, one
    by its wide string and hex pattern). Returns the expected {(file, rule)}."""
    os.makedirs(corpus)
    words = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod".split()
    expected = set()
    picks = rng.sample(range(len(rules)), 5)
    for i in range(n):
        size = rng.randint(1024, 65536)
        if i % 2:
            data = rng.randbytes(size)
        else:
            data = b" ".join(rng.choice(words) for _ in range(size // 6))[:size]
        name = f"f{i:03d}.bin"
        if i % 20 == 10:  # 10, 30, 50, 70, 90
            k = i // 20
            rule, text, wide, hexb = rules[picks[k]]
            if k < 4:
                data = data[:size // 2] + text.encode() + data[size // 2:]
            else:
                hexhit = hexb[:4] + b"\x55" + hexb[4:8] + b"\x01\x02\x03" + hexb[8:]
                data = (data[:size // 3] + wide.upper().encode("utf-16-le") + data[size // 3:]
                        + hexhit)
            expected.add((name, rule))
        with open(os.path.join(corpus, name), "wb") as f:
            f.write(data)
    return expected


def loop_matches(out):
    """{(file, rule)} from yara's "RULE /path" lines."""
    found = set()
    for line in out.splitlines():
        rule, _, path = line.partition(" ")
        if path:
            found.add((os.path.basename(path), rule))
    return found


def part_yara(args, tmp):
    print("\n=== yara: setup (rules compiled once) vs compile per scan vs a yara -C loop")
    print(load())
    rng = random.Random(11)
    rules_dir = os.path.join(tmp, "rules")
    os.makedirs(rules_dir)
    rules_file = os.path.join(rules_dir, "pssupervise.yar")
    rules = make_rules(rules_file, args.rules, rng)
    compiled = os.path.join(tmp, "compiled.yarc")
    t = time.perf_counter()
    r = subprocess.run(["yarac", "--no-warnings", rules_file, compiled], capture_output=True,
                       text=True)
    if r.returncode:
        sys.exit(f"yarac refused the generated rules: {r.stderr[-2000:]}")
    compile_s = time.perf_counter() - t
    corpus = os.path.join(tmp, "yara-corpus")
    expected = make_yara_files(corpus, args.yara_files, rules, rng)
    one = os.path.join(tmp, "yara-one")
    os.makedirs(one)
    shutil.copy(os.path.join(corpus, "f000.bin"), one)
    print(f"{args.rules} rules ({os.path.getsize(rules_file) / 1e6:.1f} MB source, yarac "
          f"{compile_s * 1000:.0f} ms, {os.path.getsize(compiled) / 1e6:.1f} MB compiled); "
          f"{args.yara_files} files of 1-64 KiB, {len(expected)} matching")

    # (b): the shipped manifest without setup, with the scan argv of before.
    old = os.path.join(tmp, "old-engines", "yara")
    os.makedirs(old)
    with open(os.path.join(SOURCE_ROOT, "engines", "yara", "engine.json")) as f:
        manifest = json.load(f)
    manifest.pop("setup", None)
    manifest["scan"]["argv"] = ["${YARA_PATH}/yara", "--no-warnings", "--fast-scan",
                                "--timeout=60", "${YARA_DATA_HOME}/pssupervise.yar", "{path}"]
    with open(os.path.join(old, "engine.json"), "w") as f:
        json.dump(manifest, f, indent=2)

    runtime = os.path.join(tmp, "yara-run")
    os.makedirs(runtime, mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("YARA_")}
    env.update(YARA_DATA_HOME=rules_dir, YARA_CACHE_HOME=os.path.join(tmp, "yara-cache"),
               YARA_STATE_HOME=os.path.join(tmp, "yara-state"), YARA_RUNTIME_DIR=runtime,
               TMPDIR=tmp)
    pss = [args.binary, "--engine", "yara"]
    loop = 'for f in "$0"/*; do yara --no-warnings --fast-scan -C "$1" "$f"; done'
    methods = [
        ("a", "pssupervise, setup (yarac once), --concurrency 1",
         pss + ["analyze", "--concurrency", "1"], None),
        ("a2", "pssupervise, setup (yarac once), --concurrency 2",
         pss + ["analyze", "--concurrency", "2"], None),
        ("b", "pssupervise, compile per scan, --concurrency 1",
         [args.binary, "--engines-dir", os.path.dirname(old), "--engine", "yara", "analyze",
          "--concurrency", "1"], None),
        ("c", "shell loop of yara -C (yarac beforehand)", ["sh", "-c", loop], [compiled]),
        # Context: yara alone compiling for every file, the shell loop of (b). (d)/(c) is
        # yara's own cost of compiling against loading compiled rules: what (b)/(a) can reach.
        ("d", "shell loop of yara RULES.yar (compile per file)",
         ["sh", "-c", loop.replace(" -C ", " ")], [rules_file]),
    ]
    per = {}   # key -> per-file seconds, one per round
    tot = {}   # key -> (T(n), T(1)) per round
    for rnd in range(args.rounds):
        print(f"round {rnd + 1}/{args.rounds} ({load()})", flush=True)
        for key, _, cmd, extra in methods:
            t_all, out_all = timed_run(cmd + [corpus] + (extra or []), env)
            t_one, _ = timed_run(cmd + [one] + (extra or []), env)
            got = loop_matches(out_all) if key in ("c", "d") else malicious_lines(out_all)
            if got != expected:
                sys.exit(f"yara method {key} found {sorted(got)}, expected {sorted(expected)}")
            per.setdefault(key, []).append((t_all - t_one) / (args.yara_files - 1))
            tot.setdefault(key, []).append((t_all, t_one))
    print(f"\nanswers checked: all methods found the same {len(expected)} files with the same "
          "rules, in every run")
    print(f"per file = (T({args.yara_files}) - T(1)) / {args.yara_files - 1}: start-up (and the "
          "setup's one compile) left out; medians of "
          f"{args.rounds} rounds [min-max]")
    print(f"{'method':<53}{'T(n) s':>8}{'T(1) s':>8}{'files/s':>9}   per file ms [min-max]")
    for key, label, _, _ in methods:
        t_all = statistics.median(t for t, _ in tot[key])
        t_one = statistics.median(t for _, t in tot[key])
        med, lo, hi = spread(per[key])
        print(f"({key:>2}) {label:<48}{t_all:>8.2f}{t_one:>8.2f}{1 / med:>9.0f}   "
              f"{med * 1000:.1f} [{lo * 1000:.1f}-{hi * 1000:.1f}]")
    ba = [b / a for b, a in zip(per["b"], per["a"])]
    ac = [a / c for a, c in zip(per["a"], per["c"])]
    med, lo, hi = spread(ba)
    print(f"yara ratio (b)/(a) compile-per-scan / setup, per file: {med:.1f}x [{lo:.1f}-{hi:.1f}]")
    med, lo, hi = spread(ac)
    print(f"yara ratio (a)/(c) setup / yara -C loop, per file: {med:.2f} [{lo:.2f}-{hi:.2f}]  "
          f"{goal(med, lo, hi, 1.2, True)}")
    med, lo, hi = spread([d / c for d, c in zip(per["d"], per["c"])])
    print(f"yara alone, (d)/(c) compile per file / yara -C, per file: {med:.1f}x "
          f"[{lo:.1f}-{hi:.1f}] (the most (b)/(a) can be: yara's compile against its load of "
          f"compiled rules)")


# ----------------------------------------------------------------------------------- pool --

def cpu_ticks():
    """(busy, all) clock ticks of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    return sum(v) - idle, sum(v)


def run_streamed(cmd, env, ready_re):
    """Runs cmd to its end, timestamping each stdout and stderr line as it arrives. Returns
    (total seconds, the time of the first stderr line matching ready_re, or None,
    [(time, stdout line)], [(time, stderr line)], (cores the run used on average, cores the
    rest of the machine used)), times from the start."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, all0 = cpu_ticks()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = [], []

    def reader(stream, sink):
        for line in stream:
            sink.append((time.monotonic() - t0, line.decode(errors="replace").rstrip("\n")))

    threads = [threading.Thread(target=reader, args=(p.stdout, out)),
               threading.Thread(target=reader, args=(p.stderr, err))]
    for t in threads:
        t.start()
    code = p.wait()
    total = time.monotonic() - t0
    busy1, all1 = cpu_ticks()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    for t in threads:
        t.join()
    if code not in (0, 1):
        sys.exit(f"{cmd} failed ({code}):\n" + "\n".join(l for _, l in err[-40:]))
    ready = next((t for t, l in err if re.search(ready_re, l)), None)
    # The run's CPU: pssupervise and what it waited for (the Wine servers, wineserver).
    ours = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / total
    machine = (busy1 - busy0) / max(1, all1 - all0) * (os.cpu_count() or 1)
    return total, ready, out, err, (ours, max(0.0, machine - ours))


def part_pool(args, tmp):
    print("\n=== pool: testvendor-server, 1 vs 2 instances, 50 ms of CPU work per scan")
    print(load())
    exe = os.path.abspath(args.testvendor_server)
    if not os.path.exists(exe) or not shutil.which("wine"):
        print(f"skipped: {exe} or wine is missing (a build without Wine)")
        return
    corpus = os.path.join(tmp, "pool-corpus")
    os.makedirs(corpus)
    eicars = set()
    for i in range(args.pool_files):
        name = f"f{i:03d}.txt"
        data = b"small file %d\n" % i * 20
        if i % 50 == 25:
            data = EICAR
            eicars.add(name)
        with open(os.path.join(corpus, name), "wb") as f:
            f.write(data)
    one = os.path.join(tmp, "pool-one")
    os.makedirs(one)
    shutil.copy(os.path.join(corpus, "f000.txt"), one)
    runtime = os.path.join(tmp, "pool-run")
    os.makedirs(runtime, mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESTVENDOR_SERVER_")}
    state = os.path.abspath(args.wine_state) if args.wine_state else os.path.join(tmp,
                                                                                 "pool-state")
    env.update(TESTVENDOR_SERVER_STATE_HOME=state,
               TESTVENDOR_SERVER_RUNTIME_DIR=runtime,
               TESTVENDOR_SERVER_PATH=os.path.dirname(exe),
               TESTVENDOR_SERVER_WORK_MS=str(args.work_ms), TMPDIR=tmp)
    env.pop("DISPLAY", None)
    cmd = [args.binary, "--log-level", "info", "--engine", "testvendor-server", "analyze",
           "--concurrency", "8"]
    # The Wine prefix is created once, by a first run (as a user's first run would).
    t = time.perf_counter()
    timed_run(cmd + [one], dict(env, TESTVENDOR_SERVER_INSTANCES="1"))
    print(f"first run (creates the Wine prefix if it is new): {time.perf_counter() - t:.1f} s")
    # "ready in" for one instance; "N instances of ... ready" for a pool.
    ready_re = r"(\d+ instances of \S+ ready|testvendor-server\.exe \(pid \d+\) ready in)"
    n = args.pool_files
    thr_log, thr_sub, totals, cpus = {}, {}, {}, {}
    counts = (1, 2)
    for rnd in range(args.rounds):
        print(f"round {rnd + 1}/{args.rounds} ({load()})", flush=True)
        for inst in counts:
            e = dict(env, TESTVENDOR_SERVER_INSTANCES=str(inst))
            total, ready, out, _, cpu = run_streamed(cmd + [corpus], e, ready_re)
            t_one, _ = timed_run(cmd + [one], e)
            if ready is None:
                sys.exit(f"no 'ready' line in the log of {inst} instance(s)")
            got = {os.path.basename(p) for p, _ in malicious_lines("\n".join(l for _, l in out))}
            if got != eicars or len(out) != n:
                sys.exit(f"{inst} instance(s): {len(out)} answers, malicious {sorted(got)}, "
                         f"expected {n} answers, malicious {sorted(eicars)}")
            after = [t for t, _ in out if t > ready]
            thr_log.setdefault(inst, []).append(len(after) / (after[-1] - ready))
            thr_sub.setdefault(inst, []).append((n - 1) / (total - t_one))
            totals.setdefault(inst, []).append((total, t_one, ready, len(after)))
            cpus.setdefault(inst, []).append(cpu)
    print(f"\nanswers checked: {n} answers per run, the {len(eicars)} EICAR file(s) malicious")
    print(f"{n} files, --concurrency 8, {args.work_ms} ms of CPU work per scan, one scan at a "
          f"time per server (ideal: {1000 / args.work_ms:.0f} files/s per instance); "
          f"{os.cpu_count()} cores; medians of {args.rounds} rounds [min-max]")
    print("files/s (log) = answers printed after the log line saying every instance is ready, "
          "over the time from that line to the last answer (start-up excluded)")
    print(f"files/s (T) = {n - 1} / (T({n}) - T(1)), T(1) an analyze of 1 file (start-up "
          "subtracted)")
    print("cores used = CPU of the run (pssupervise, the servers, wineserver) over T(n); others ="
          " the rest of the machine meanwhile (other jobs: what the servers could not have)")
    print(f"{'instances':<10}{'T(n) s':>8}{'T(1) s':>8}{'ready at s':>11}{'answers after':>14}"
          f"{'files/s (log)':>22}{'files/s (T)':>22}{'cores used':>12}{'others':>8}")
    for inst in counts:
        ts = totals[inst]
        med_l, lo_l, hi_l = spread(thr_log[inst])
        med_s, lo_s, hi_s = spread(thr_sub[inst])
        print(f"{inst:<10}{statistics.median(t[0] for t in ts):>8.2f}"
              f"{statistics.median(t[1] for t in ts):>8.2f}"
              f"{statistics.median(t[2] for t in ts):>11.2f}"
              f"{statistics.median(t[3] for t in ts):>14.0f}"
              f"{med_l:>9.1f} [{lo_l:5.1f}-{hi_l:5.1f}]{med_s:>9.1f} [{lo_s:5.1f}-{hi_s:5.1f}]"
              f"{statistics.median(c[0] for c in cpus[inst]):>12.2f}"
              f"{statistics.median(c[1] for c in cpus[inst]):>8.2f}")
    for label, thr in (("log", thr_log), ("T", thr_sub)):
        r = [b / a for a, b in zip(thr[1], thr[2])]
        med, lo, hi = spread(r)
        print(f"pool ratio 2 instances / 1, files/s ({label}): {med:.2f}x [{lo:.2f}-{hi:.2f}]  "
              f"{goal(med, lo, hi, 1.7, False)}")


# --------------------------------------------------------------------------------- reload --

class Stamped(list):
    """The Receiver's list of answers, each stamped with the time it arrived."""

    def append(self, item):
        super().append((time.monotonic(), *item))


def webhook_run(args, tmp, tag, reload):
    """One webhook run under a steady stream; returns its figures."""
    d = os.path.join(tmp, f"reload-{tag}")
    db = os.path.join(d, "db")
    shutil.copytree(os.path.join(SOURCE_ROOT, "engines", "clamav", "db"), db)
    runtime = os.path.join(d, "run")
    os.makedirs(runtime, mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAMAV_", "CLAMD_"))}
    env.update(CLAMAV_DATA_HOME=db, CLAMAV_RUNTIME_DIR=runtime,
               CLAMAV_STATE_HOME=os.path.join(d, "state"), TMPDIR=d)
    env.pop("PSS_WEBHOOK_SECRET", None)
    log = os.path.join(d, "webhook.log")
    recv = Receiver()
    recv.answers = Stamped()
    with open(log, "w") as err:
        proc = subprocess.Popen([args.binary, "--log-level", "info", "--engine", "clamav",
                                 "webhook", "-p", "0", "--secret", SECRET,
                                 "--allow-private-networks", "--concurrency", "2"],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)

    def read_log():
        with open(log, errors="replace") as f:
            return f.read()

    try:
        port = None
        for _ in range(3000):
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", read_log())
            if m:
                port = int(m.group(1))
                break
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        if port is None:
            sys.exit("webhook did not start:\n" + read_log()[-3000:])
        uris = {"clean": "data:,a%20clean%20file",
                "eicar": "data:;base64," + __import__("base64").b64encode(EICAR).decode(),
                "new": "data:," + urllib.parse.quote(BENCH_SAMPLE)}
        kinds = ("clean", "eicar", "new")
        expiration = (datetime.now(timezone.utc) + timedelta(seconds=900)).strftime(
            "%Y-%m-%dT%H:%M:%S.%f+00:00")
        total = int(args.rate * args.seconds)
        sent = {}  # n -> (time sent, kind)
        marks = {}
        done_seen = threading.Event()

        def watch():  # the time the log says the new definitions are in use
            while not done_seen.is_set():
                if "new definitions in use" in read_log():
                    marks["done"] = time.monotonic()
                    done_seen.set()
                    return
                if marks.get("stop"):
                    return
                time.sleep(0.005)

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        t0 = time.monotonic()
        for n in range(total):
            due = t0 + n / args.rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            if reload and n == total // 2:
                with open(os.path.join(db, "bench.ndb"), "w") as f:
                    f.write(BENCH_SIGNATURE + "\n")
                threading.Thread(target=watch, daemon=True).start()
                marks["hup"] = time.monotonic()
                proc.send_signal(signal.SIGHUP)
            kind = kinds[n % 3]
            body = json.dumps({"id": n + 1, "artifact_type": "file", "artifact_uri": uris[kind],
                               "expiration": expiration,
                               "response_url": recv.url}).encode()
            headers = {"Content-Type": "application/json", "X-POLYSWARM-EVENT": "bounty",
                       "X-POLYSWARM-SIGNATURE": sign(body, SECRET)}
            for attempt in range(2):
                try:
                    sent[n] = (time.monotonic(), kind)
                    conn.request("POST", "/", body, headers)
                    resp = conn.getresponse()
                    resp.read()
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()  # the server closed a kept-alive connection: a new one
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    if attempt:
                        raise
            if resp.status != 202:
                sys.exit(f"bounty {n + 1}: HTTP {resp.status}")
        send_end = time.monotonic()
        conn.close()
        deadline = time.monotonic() + 300
        while len(recv.answers) < total and time.monotonic() < deadline:
            time.sleep(0.02)
        if reload and not done_seen.wait(max(1, deadline - time.monotonic())):
            sys.exit("no 'new definitions in use' in the log:\n" + read_log()[-3000:])
        marks["stop"] = True
        if len(recv.answers) != total:
            sys.exit(f"{len(recv.answers)} answers of {total} sent")
        if recv.bad_signatures:
            sys.exit(f"{recv.bad_signatures} answers with a bad signature")
        answers = {}
        for t, headers, a in list(recv.answers):
            n = int(headers["X-POLYSWARM-BOUNTY"]) - 1
            if n in answers:
                sys.exit(f"bounty {n + 1} answered twice")
            answers[n] = (t, a["verdict"], (a.get("metadata") or {}).get("malware_family"))
        # Answers as the definitions in use say: the new sample is found once the log says so.
        for n, (t_sent, kind) in sent.items():
            _, verdict, family = answers[n]
            if kind == "clean" and verdict != "benign" or \
                    kind == "eicar" and (verdict, family) != ("malicious",
                                                           "Eicar-Test-Signature"):
                sys.exit(f"bounty {n + 1} ({kind}): {verdict} {family}")
            if kind == "new":
                new_defs = reload and t_sent > marks["done"]
                old_defs = not reload or t_sent < marks["hup"]
                if new_defs and (verdict, family) != ("malicious", "PssBench"):
                    sys.exit(f"bounty {n + 1} sent after the reload: {verdict} {family}")
                if old_defs and verdict != "benign":
                    sys.exit(f"bounty {n + 1} sent before the reload: {verdict} {family}")
        lat = {n: answers[n][0] - t for n, (t, _) in sent.items()}
        result = {"all": list(lat.values()), "sent": total,
                  "rate": total / (send_end - t0)}
        if reload:
            hup, done = marks["hup"], marks["done"]
            window = [n for n, (t, _) in sent.items() if t <= done and answers[n][0] >= hup]
            result.update(window=[lat[n] for n in window],
                          outside=[lat[n] for n in lat if n not in set(window)],
                          reload_s=done - hup,
                          found_new=sum(1 for n, (t, k) in sent.items()
                                        if k == "new" and answers[n][1] == "malicious"))
        return result
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
        recv.close()
        pidfile = os.path.join(runtime, "clamd.pid")
        if os.path.exists(pidfile):
            pid = int(open(pidfile).read().strip() or 0)
            if pid and pid_alive(pid):
                print(f"warning: clamd (pid {pid}) left running: killed")
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(d, ignore_errors=True)


def part_reload(args, tmp):
    print("\n=== reload: webhook latency under a steady stream, without and with a SIGHUP reload")
    print(load())
    rows = []
    for rnd in range(args.rounds):
        print(f"round {rnd + 1}/{args.rounds} ({load()})", flush=True)
        steady = webhook_run(args, tmp, f"{rnd}-steady", reload=False)
        rel = webhook_run(args, tmp, f"{rnd}-reload", reload=True)
        rows.append((steady, rel))
    ms = lambda v: v * 1000  # noqa: E731
    print("\nanswers checked: every bounty answered once, signed, clean benign, EICAR "
          "malicious; the new sample benign before the SIGHUP, PssBench once the log said "
          "'new definitions in use'")
    print(f"{args.rate:g} bounties/s (data: URIs, clean/EICAR/new in turn) for {args.seconds} s "
          f"per run, webhook --concurrency 2, clamd MaxThreads 2; latency = POST sent -> answer "
          f"at the loopback receiver; reload window = SIGHUP -> 'new definitions in use', its "
          f"bounties those in flight during it")
    print(f"{'round':<6}{'run':<22}{'bounties':>9}{'sent/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'max ms':>8}")
    for i, (steady, rel) in enumerate(rows):
        lines = [("steady (no reload)", steady["all"], steady),
                 ("reload run, all", rel["all"], rel),
                 ("reload run, outside", rel["outside"], None),
                 ("reload window", rel["window"], None)]
        for name, v, r in lines:
            rate = f"{r['rate']:>8.1f}" if r else f"{'':>8}"
            print(f"{i + 1:<6}{name:<22}{len(v):>9}{rate}{ms(percentile(v, 50)):>8.1f}"
                  f"{ms(percentile(v, 99)):>8.1f}{ms(max(v)):>8.1f}")
        print(f"{'':<6}reload took {rel['reload_s']:.2f} s (SIGHUP -> new definitions in use); "
              f"{rel['found_new']} new samples found by the new signature")
    p50s = [percentile(s["all"], 50) for s, _ in rows]
    p99s = [percentile(s["all"], 99) for s, _ in rows]
    w50 = [percentile(r["window"], 50) for _, r in rows]
    w99 = [percentile(r["window"], 99) for _, r in rows]
    print("summary, medians of rounds [min-max]:")
    for name, v in (("steady p50", p50s), ("steady p99", p99s), ("reload window p50", w50),
                    ("reload window p99", w99),
                    ("reload duration", [r["reload_s"] for _, r in rows])):
        med, lo, hi = spread(v)
        print(f"  {name:<20}{ms(med):>8.1f} ms [{ms(lo):.1f}-{ms(hi):.1f}]")
    steady_all = [v for s, _ in rows for v in s["all"]]
    window_all = [v for _, r in rows for v in r["window"]]
    print(f"  pooled over the rounds: steady p50 {ms(percentile(steady_all, 50)):.1f} ms, p99 "
          f"{ms(percentile(steady_all, 99)):.1f} ms ({len(steady_all)} bounties); reload window "
          f"p50 {ms(percentile(window_all, 50)):.1f} ms, p99 {ms(percentile(window_all, 99)):.1f}"
          f" ms ({len(window_all)} bounties)")
    ratio = [percentile(r["window"], 99) / percentile(s["all"], 99) for s, r in rows]
    med, lo, hi = spread(ratio)
    print(f"reload ratio p99 in the reload window / p99 steady state: {med:.2f} "
          f"[{lo:.2f}-{hi:.2f}]")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--part", action="append", choices=("yara", "pool", "reload", "all"),
                    help="repeatable; default all")
    ap.add_argument("--rounds", "--runs", type=int, default=3)
    ap.add_argument("--rules", type=int, default=5000)
    ap.add_argument("--yara-files", type=int, default=100)
    ap.add_argument("--pool-files", type=int, default=200)
    ap.add_argument("--work-ms", type=int, default=50)
    ap.add_argument("--testvendor-server", metavar="EXE",
                    help="default: wine/testvendor/testvendor-server.exe next to the binary")
    ap.add_argument("--wine-state", metavar="DIR",
                    help="pool: keep the Wine prefix here across runs (default: a new one in "
                    "the temp dir, created by a first run and removed at the end)")
    ap.add_argument("--rate", type=float, default=50, help="reload: bounties per second")
    ap.add_argument("--seconds", type=float, default=20, help="reload: seconds per run")
    args = ap.parse_args()
    args.binary = os.path.abspath(args.binary)
    if not args.testvendor_server:
        args.testvendor_server = os.path.join(os.path.dirname(args.binary), "wine",
                                              "testvendor", "testvendor-server.exe")
    parts = set(args.part or ["all"])
    if "all" in parts:
        parts = {"yara", "pool", "reload"}
    print(f"machine: {os.cpu_count()} cores; {load()}")
    tmp = tempfile.mkdtemp(prefix="pss-lifecyclebench-")
    try:
        for name, fn in (("yara", part_yara), ("pool", part_pool), ("reload", part_reload)):
            if name in parts:
                t = time.monotonic()
                fn(args, tmp)
                print(f"({name} part: {time.monotonic() - t:.0f} s; {load()})", flush=True)
    finally:
        leftovers(tmp)
        remove_tree(tmp)


if __name__ == "__main__":
    main()
