#!/usr/bin/python3
"""Benchmark: pssupervise analyze vs clamdscan --multiscan and --stream, one clamd, one corpus.

Prints wall-clock means (hyperfine) and the ratios pssupervise / clamdscan (< 1.0: faster),
each the median of --rounds rounds (with their range): every round times all the commands
again, so a ratio compares runs made moments apart on a machine that may be busy. pssupervise
scans with its result cache off, except "pssupervise unix cached" (warm): its default, the
cache on, answering a second run of the same files.
Usage: clamd_bench.py PSSUPERVISE_BINARY [--files N] [--runs N] [--rounds N] [--compare BINARY]...
[--floor FILDES_FLOOR]
(--compare: other pssupervise binaries timed in the same rounds, e.g. the build before a change;
each is named "pssupervise#1", "#2", ... and must print the same output. --floor: bench/
fildes_floor, by default the one built next to PSSUPERVISE_BINARY: the least a per-file client
does, FILDES on two connections and nothing else, timed as "floor unix"; pssupervise / floor is
the dispatch's own cost, floor / multiscan what one request per file costs clamd.)
After the rounds, each command runs 3 times more (or --runs), alone, with the CPU seconds clamd spent
on it read from /proc (and the client's own): where the time goes, not only how much.
"""
import argparse
import io
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
os.environ.setdefault("PSS_BINARY", "unused")
os.environ.setdefault("PSS_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), ".."))
from common import EICAR, Clamd, free_port  # noqa: E402

# Every figure here is of scans: the result cache (on by default) would answer repeats.
os.environ.setdefault("PSS_CACHE", "off")


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
    # No warm-up: check_answers() has run every command's files through clamd and the page cache.
    args = ["hyperfine", "--runs", str(runs), "-N", "--ignore-failure",
            "--style", "basic", "--export-json", out_json]
    for name, cmd in commands:
        args += ["-n", name, cmd]
    subprocess.run(args, check=True)
    with open(out_json) as f:
        return {r["command"]: r for r in json.load(f)["results"]}


# (mode, ours, baseline, target): the targets of issue 15 (item 8) first, then context. "ours"
# names the binary under test; binaries given with --compare get the same rows.
RATIOS = [
    ("warm", "pssupervise unix", "clamdscan --multiscan", 1.0),
    ("warm", "pssupervise tcp", "clamdscan --stream tcp", 1.0),
    ("cold", "pssupervise unix", "clamdscan --multiscan", 0.8),
    ("warm", "pssupervise unix", "clamdscan --stream unix", None),
    ("warm", "pssupervise tcp", "clamdscan --multiscan", None),
    ("cold", "pssupervise unix", "clamdscan --stream unix", None),
    ("warm", "pssupervise unix", "floor unix", None),
    ("cold", "pssupervise unix", "floor unix", None),
    ("warm", "floor unix", "clamdscan --multiscan", None),
    ("cold", "floor unix", "clamdscan --multiscan", None),
    ("warm", "floor unix 1", "clamdscan --multiscan", None),
    # What a user's second run costs with both tools' defaults: clamd answers from its cache,
    # pssupervise from its own result cache (on by default), without asking clamd.
    ("warm", "pssupervise unix cached", "clamdscan --multiscan", None),
]


def ratio_rows(binaries):
    """(mode, ours, baseline, target) for every binary compared, each row once."""
    rows = []
    for (mode, ours, base, target), (name, _) in itertools.product(RATIOS, binaries):
        row = (mode, ours.replace("pssupervise", name), base, target)
        if row not in rows:
            rows.append(row)
    return rows


def infected(lines, strip_prefix=""):
    """{(path, signature)} from clamdscan's "path: Name FOUND" or analyze's
    "path: malicious Name" lines; clamd's ".UNOFFICIAL" suffix is not part of the name."""
    found = set()
    for line in lines:
        path, _, rest = line.rpartition(": ")
        words = rest.split()
        if words[-1:] == ["FOUND"]:
            name = words[0]
        elif words[:1] == ["malicious"]:
            name = words[1]
        else:
            continue
        found.add((path.removeprefix(strip_prefix), name.removesuffix(".UNOFFICIAL")))
    return found


def check_answers(commands, corpus):
    """Each pssupervise command once: the same output on either socket and from every binary
    compared, and the same infected files and names as clamdscan (the floor client: as many).
    A benchmark of wrong answers would mean nothing."""
    outputs = {}
    for name, cmd in commands:
        if (name.startswith("pssupervise") or name == "clamdscan --multiscan"
                or name.startswith("floor")):
            argv = cmd.split()
            if name.startswith("clamdscan"):
                argv = [a for a in argv if a != "--quiet"] + ["--infected"]
            run = subprocess.run(argv, capture_output=True, text=True)
            outputs[name] = run.stdout
    ours = [v for k, v in outputs.items() if k.startswith("pssupervise")]
    if any(o != ours[0] for o in ours):
        sys.exit("pssupervise's output differs between sockets or binaries")
    want = infected(outputs["clamdscan --multiscan"].splitlines())
    got = infected(ours[0].splitlines())
    if got != want or not got:
        sys.exit(f"pssupervise and clamdscan disagree: {sorted(got ^ want)[:5]}")
    for name, out in outputs.items():
        if name.startswith("floor") and not out.endswith(f", {len(want)} FOUND\n"):
            sys.exit(f"the floor client does not find the {len(want)} infected files: {out}")
    return len(got)


def cpu_seconds(clamd, cmd, runs):
    """(clamd's, the client's) CPU seconds for one run of cmd, median of `runs` runs."""
    tick = os.sysconf("SC_CLK_TCK")

    def clamd_cpu():
        with open(f"/proc/{clamd.proc.pid}/stat") as f:
            fields = f.read().rpartition(") ")[2].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime

    server, client = [], []
    for _ in range(runs):
        before, children = clamd_cpu(), os.times()
        subprocess.run(cmd.split(), stdout=subprocess.DEVNULL, check=False)
        after = os.times()
        server.append(clamd_cpu() - before)
        client.append(after.children_user + after.children_system
                      - children.children_user - children.children_system)
    return statistics.median(server), statistics.median(client)


def spread(values):
    values = sorted(values)
    return statistics.median(values), values[0], values[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--files", type=int, default=400)
    # Few runs per round, several rounds: a machine whose load changes (other builds) then
    # weighs on every command alike, not on whichever hyperfine was timing at that moment.
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--compare", action="append", default=[], metavar="BINARY")
    ap.add_argument("--floor", metavar="FILDES_FLOOR")
    args = ap.parse_args()
    floor = args.floor or os.path.join(os.path.dirname(os.path.abspath(args.binary)), "bench",
                                       "fildes_floor")
    if not os.access(floor, os.X_OK):
        sys.exit(f"{floor} is missing: ninja -C BUILD bench/fildes_floor, or give --floor")
    binaries = [("pssupervise", args.binary)] + [(f"pssupervise#{i + 1}", b)
                                                 for i, b in enumerate(args.compare)]
    for name, b in binaries[1:]:
        print(f"{name}: {b}")
    if not shutil.which("hyperfine"):
        sys.exit("hyperfine is missing: run env/bootstrap")
    for var in ("CLAMD_SOCKET", "CLAMD_HOST", "CLAMD_PORT", "CLAMAV_TRANSFER"):
        os.environ.pop(var, None)  # each command names its own clamd
    tmp = tempfile.mkdtemp(prefix="pss-bench-")
    times = {}   # (mode, command) -> every run's seconds, all rounds
    ratios = {}  # (mode, ours, baseline) -> one ratio of means per round
    try:
        corpus = os.path.join(tmp, "corpus")
        total = make_corpus(corpus, args.files)
        print(f"corpus: {args.files} files, {total / 1e6:.1f} MB in {corpus}")
        print(f"machine: {os.cpu_count()} cores; clamd MaxThreads 2; pssupervise --concurrency 2")
        # cold: clamd's clean-file cache off, every file really scanned (a bounty stream never
        # repeats an artifact); warm: the same corpus again, clamd answers from its cache, so
        # only per-file overhead is compared. The warm clamd also listens on TCP (loopback),
        # where both clients must send the bytes (INSTREAM).
        clamds = {}  # mode -> (clamd, commands)
        started = []
        try:
            for mode, extra in (("cold", ["DisableCache yes"]), ("warm", [])):
                port = free_port() if mode == "warm" else None
                if port:
                    extra = extra + [f"TCPSocket {port}", "TCPAddr 127.0.0.1"]
                clamd = Clamd(tmp, extra_config=extra, name=f"clamd-{mode}")
                started.append(clamd)
                unix_conf = os.path.join(tmp, f"clamdscan-{mode}.conf")
                with open(unix_conf, "w") as f:
                    f.write(f"LocalSocket {clamd.socket}\n")
                pss = f"analyze --engine clamav --concurrency 2 {corpus}"
                scan = "--no-summary --quiet"
                commands = [(f"{name} unix", f"env CLAMD_SOCKET={clamd.socket} {b} {pss}")
                            for name, b in binaries]
                commands += [
                    ("clamdscan --multiscan",
                     f"clamdscan -c {unix_conf} --multiscan {scan} {corpus}"),
                    ("clamdscan --stream unix",
                     f"clamdscan -c {unix_conf} --stream {scan} {corpus}"),
                    ("floor unix", f"{floor} {clamd.socket} {corpus} 2"),
                    # One request in flight: what a second one costs clamd, and gains.
                    ("floor unix 1", f"{floor} {clamd.socket} {corpus} 1"),
                ]
                if mode == "warm":
                    cache = os.path.join(tmp, "results.sqlite")  # filled by check_answers
                    commands.append(("pssupervise unix cached",
                                     f"env CLAMD_SOCKET={clamd.socket} PSS_CACHE={cache} "
                                     f"{args.binary} {pss}"))
                if port:
                    tcp_conf = os.path.join(tmp, f"clamdscan-{mode}-tcp.conf")
                    with open(tcp_conf, "w") as f:
                        f.write(f"TCPSocket {port}\nTCPAddr 127.0.0.1\n")
                    commands[len(binaries):len(binaries)] = [
                        (f"{name} tcp", f"env CLAMD_HOST=127.0.0.1 CLAMD_PORT={port} {b} {pss}")
                        for name, b in binaries]
                    commands.append(("clamdscan --stream tcp",
                                     f"clamdscan -c {tcp_conf} --stream {scan} {corpus}"))
                clamds[mode] = (clamd, commands)
            for mode, (_, commands) in clamds.items():
                n = check_answers(commands, corpus)
                print(f"[{mode}] answers checked: {n} infected files, as clamdscan says")
            for r in range(args.rounds):
                for mode, (_, commands) in clamds.items():
                    print(f"\n== round {r + 1}/{args.rounds}, {mode}")
                    res = hyperfine(commands, args.runs,
                                    os.path.join(tmp, f"hyperfine-{mode}-{r}.json"))
                    for name, v in res.items():
                        times.setdefault((mode, name), []).extend(v["times"])
                    for m, us, base, _ in ratio_rows(binaries):
                        if m == mode and us in res and base in res:
                            ratios.setdefault((m, us, base), []).append(
                                res[us]["mean"] / res[base]["mean"])
            cpu = {(mode, name): cpu_seconds(clamd, cmd, max(3, args.runs))
                   for mode, (clamd, commands) in clamds.items() for name, cmd in commands}
        finally:
            for clamd in started:
                clamd.stop()
        print()
        print(f"{'mode':<5} {'command':<24}{'median s':>9}{'min':>7}{'max':>7}{'files/s':>9}")
        for (mode, name), ts in times.items():
            med, lo, hi = spread(ts)
            print(f"{mode:<5} {name:<24}{med:>9.3f}{lo:>7.3f}{hi:>7.3f}{args.files / med:>9.0f}")
        print(f"\nratios, median of {args.rounds} rounds [min-max] (< 1: pssupervise is faster)")
        for mode, ours, base, target in ratio_rows(binaries):
            if (mode, ours, base) not in ratios:
                continue
            med, lo, hi = spread(ratios[(mode, ours, base)])
            goal = ""
            if target is not None:
                verdict = ("met in every round" if hi <= target else
                           "met (median)" if med <= target else "NOT met")
                goal = f"  target <= {target:.2f}: {verdict}"
            print(f"{mode:<5} {ours + ' / ' + base:<48}{med:>6.2f} [{lo:.2f}-{hi:.2f}]{goal}")
        print(f"\nCPU seconds per run, median of {max(3, args.runs)} runs of each command alone")
        print(f"{'mode':<5} {'command':<24}{'clamd':>8}{'client':>8}")
        for (mode, name), (clamd_s, client_s) in cpu.items():
            print(f"{mode:<5} {name:<24}{clamd_s:>8.2f}{client_s:>8.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
