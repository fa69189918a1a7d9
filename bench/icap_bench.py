#!/usr/bin/python3
"""Benchmark: ICAP antivirus servers in front of one private clamd, in two parts.

throughput: every file of a corpus (clamd_bench's mix: random data, ELF programs, text, zips,
  EICAR carriers; 512 B to 4 MiB) sent as a RESPMOD over --concurrency keep-alive
  connections, each its own client process, closed loop, the way a proxy sends it (OPTIONS
  first, then its Preview and Allow: 204). Requests/s, p50 and p99 latency (first byte
  sent -> final answer received), and MB/s. Every answer is checked: the corpus's EICAR
  carriers infected, the rest 204; a benchmark of wrong answers would mean nothing. The
  baseline is c-icap 0.5.10's virus_scan (mode=simple, clamd_mod) on the clamd. Other
  servers in the same rounds: --ours starts
  `pssupervise --engine clamav icap -p PORT` (CLAMD_SOCKET: the same clamd; --server-cmd
  changes the command), --server NAME=icap://HOST:PORT/SERVICE names one already running.
  Ratios server / c-icap are computed within a round. c-icap-stretch, the c-icap project's
  load generator, runs on each server too, as context only: each of its threads sleeps
  0.5 s after every request it keeps alive and 1 s after each connection it closes (30 %),
  so it caps near 1.5 requests/s per thread whatever the server does, and prints no
  latency.
per-file: the cost of one file through a loop of c-icap-client processes, one process and one
  connection per file, on c-icap: (T(N) - T(1)) / (N - 1). c-icap-client sends an OPTIONS
  before every RESPMOD, and writes the RESPMOD in five small writes without TCP_NODELAY: its
  answer then waits ~40 ms (Nagle and delayed ACK; strace shows the 42 ms in its read), which
  dominates its per-file figure. So a second reference: the raw client of icap_support, in
  this process, one connection per file. With --ours, the same formula for
  `pssupervise --engine icap analyze --concurrency 1` with ICAP_URL at the same c-icap.

Every part runs --rounds rounds; figures are medians of the rounds [min-max]; the load
average is printed before each round. Nothing passes or fails on time.
Usage: icap_bench.py [PSSUPERVISE] [--ours] [--server NAME=URL]... [--server-cmd CMD]
       [--part throughput|per-file|all]... [--files N] [--concurrency N] [--rounds N]
(PSSUPERVISE, default build/pssupervise, is only run with --ours.)
"""
import argparse
import multiprocessing
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(SOURCE_ROOT, "bench"))
os.environ.setdefault("PSS_BINARY", "unused")
os.environ.setdefault("PSS_SOURCE_ROOT", SOURCE_ROOT)
from clamd_bench import infected, make_corpus, spread  # noqa: E402
from common import EICAR, Clamd, free_port  # noqa: E402
from icap_support import (C_ICAP_CLIENT, CIcap, IcapClient, IcapError,  # noqa: E402
                          c_icap_client, stop_process, threat_names)
from lifecycle_bench import leftovers, load, percentile  # noqa: E402

# Every figure here is of scans: the result cache (on by default) would answer repeats.
os.environ.setdefault("PSS_CACHE", "off")

OURS_CMD = "{binary} --engine clamav icap -p {port}"
STRETCH = "/usr/bin/c-icap-stretch"
READY_TIMEOUT = 120


def ms(seconds):
    return seconds * 1000


# ------------------------------------------------------------------------------ servers --

class Server:
    """An ICAP server under test: its name and (host, port, service); proc if we started it."""

    def __init__(self, name, host, port, service, proc=None, log=None):
        self.name, self.host, self.port, self.service = name, host, port, service
        self.proc, self.log = proc, log

    @property
    def url(self):
        return f"icap://{self.host}:{self.port}/{self.service}"

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


def parse_server(text):
    name, sep, url = text.partition("=")
    if not sep:
        sys.exit(f"--server wants NAME=icap://HOST:PORT/SERVICE, not {text!r}")
    c = IcapClient.from_url(url)
    return Server(name, c.host, c.port, c.service)


def has_subcommand(binary, name):
    """True if `binary --help` lists subcommand `name`. (An unknown subcommand only gets
    CLI11's "A subcommand is required", exit 2: --help is the reliable test.)"""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
    section = out.split("Subcommands:", 1)[-1]
    return re.search(rf"^\s+{re.escape(name)}\s", section, re.M) is not None


def start_server(name, command, clamd, service, tmp):
    """Starts `command` ({port} and {clamd_socket} filled in; CLAMD_SOCKET set) in its own
    session, ready once an OPTIONS of `service` answers 200."""
    port = free_port()
    argv = shlex.split(command.format(port=port, clamd_socket=clamd.socket))
    log_path = os.path.join(tmp, f"{name}.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAMD_", "CLAMAV_"))}
    env["CLAMD_SOCKET"] = clamd.socket
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd=tmp)
    server = Server(name, "127.0.0.1", port, service, proc, log_path)
    client = IcapClient("127.0.0.1", port, service, timeout=5)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            if client.options()[0].split(" ")[1] == "200":
                return server
        except (OSError, IcapError, IndexError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            with open(log_path, errors="replace") as f:
                tail = f.read()[-3000:]
            state = ("not ready" if proc.returncode is None
                     else f"exited with {proc.returncode}")
            sys.exit(f"{name} ({' '.join(argv)}) {state} before answering OPTIONS {service} "
                     f"with 200:\n{tail}")
        time.sleep(0.05)


# --------------------------------------------------------------------------- throughput --

def verdict(r):
    """'infected', 'clean' or 'error: ...' for an IcapResponse."""
    if r.status == 204:
        return "clean"
    if r.status == 200 and (threat_names(r.headers) or r.http_status == 403):
        return "infected"
    if r.status == 200 and r.http_status == 200:
        return "clean"
    return f"error: {r.status_line}"


def _client(client, preview, allow204, work, nxt, out):
    """One load-generating connection, in its own process: takes the next file of `work`
    (the shared counter `nxt`) until none is left; puts its (latencies, verdicts, errors,
    bytes sent) on `out`."""
    conn = None
    latencies, verdicts, errors, sent = [], {}, [], 0
    while True:
        with nxt.get_lock():
            if nxt.value >= len(work):
                break
            path = work[nxt.value]
            nxt.value += 1
        with open(path, "rb") as f:
            body = f.read()
        t = time.perf_counter()
        try:
            if conn is None:
                conn = client.connect()
            r = conn.respmod(body, preview=preview, allow204=allow204,
                             http_url=f"http://origin.test/{os.path.basename(path)}")
            v = verdict(r)
            if r.headers.get("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, IcapError) as e:
            v = f"error: {type(e).__name__}: {e}"[:300]
            if conn is not None:
                conn.close()
            conn = None
        latencies.append(time.perf_counter() - t)
        sent += len(body)
        if v.startswith("error"):
            errors.append((path, v))
        verdicts[path] = v
    if conn is not None:
        conn.close()
    out.put((latencies, verdicts, errors, sent))


def measure(host, port, service, files, concurrency=4, passes=1, timeout=READY_TIMEOUT):
    """Sends every file of `files` `passes` times as RESPMODs over `concurrency` keep-alive
    connections (closed loop; a connection the server closes is opened again) and returns
    {requests, errors, seconds, rps, p50, p99 (seconds), mbps, verdicts {path: verdict},
    client_cpu (share of one core the clients used)}. Preview and Allow: 204 as the
    server's OPTIONS offers them. Each connection is its own process: threads of one
    process would share one interpreter lock, and a client busy sending a large body would
    delay the others' requests, by amounts that depend on the server's timing."""
    client = IcapClient(host, port, service, timeout=timeout)
    _, opts = client.options()
    preview = int(opts["Preview"]) if "Preview" in opts else None
    allow204 = "204" in opts.get("Allow", "")
    work = [f for _ in range(passes) for f in files]
    ctx = multiprocessing.get_context("fork")
    nxt = ctx.Value("l", 0)
    out = ctx.Queue()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    procs = [ctx.Process(target=_client, args=(client, preview, allow204, work, nxt, out))
             for _ in range(concurrency)]
    for p in procs:
        p.start()
    parts = [out.get() for _ in procs]  # before join: a full queue pipe would block them
    seconds = time.perf_counter() - t0
    for p in procs:
        p.join()
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    latencies, verdicts, errors, sent = [], {}, [], 0
    for lat, ver, err, n in parts:
        latencies += lat
        verdicts.update(ver)
        errors += err
        sent += n
    return {"requests": len(work), "errors": errors, "seconds": seconds,
            "rps": len(work) / seconds, "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99), "mbps": sent / seconds / 1e6,
            "verdicts": verdicts, "client_cpu": cpu / seconds}


def check_verdicts(name, verdicts, expected_infected):
    """Exits if any answer is wrong: EICAR carriers infected, every other file clean."""
    wrong = [(p, v) for p, v in sorted(verdicts.items())
             if v != ("infected" if p in expected_infected else "clean")]
    if wrong:
        sys.exit(f"{name} answered {len(wrong)} files wrongly, e.g. {wrong[:5]}")


def stretch(server, files, threads, requests):
    """Runs c-icap-stretch against the server; returns {served, failed, soft_failed,
    seconds (our wall clock), rps}. It prints cumulative statistics once a second and stops
    at the first check after -m requests were served."""
    argv = [STRETCH, "-i", server.host, "-p", str(server.port), "-s", server.service,
            "-t", str(threads), "-m", str(requests), *files]
    t = time.perf_counter()
    run = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - t
    block = run.stdout.rsplit("Statistics:", 1)[-1]

    def field(label):
        m = re.search(rf"{label} :(\d+)", block)
        return int(m.group(1)) if m else 0
    served = field("Requests served")
    if run.returncode != 0 or not served:
        sys.exit(f"c-icap-stretch failed ({run.returncode}) on {server.name}:\n"
                 f"{(run.stdout + run.stderr)[-2000:]}")
    return {"served": served, "failed": field("Requests failed"),
            "soft_failed": field("Requests soft failed"), "seconds": seconds,
            "rps": served / seconds}


def part_throughput(args, servers, corpus_files, expected, rounds_out):
    for r in range(args.rounds):
        print(f"\n== throughput round {r + 1}/{args.rounds}; {load()}", flush=True)
        order = servers if r % 2 == 0 else list(reversed(servers))
        for s in order:
            m = measure(s.host, s.port, s.service, corpus_files, args.concurrency, args.passes)
            check_verdicts(s.name, m["verdicts"], expected)
            rounds_out.setdefault(("closed", s.name), []).append(m)
            print(f"  {s.name:<14} {m['rps']:8.1f} req/s  p50 {ms(m['p50']):7.1f} ms  "
                  f"p99 {ms(m['p99']):7.1f} ms  {m['mbps']:6.1f} MB/s  "
                  f"(client CPU {m['client_cpu'] * 100:.0f} % of a core)", flush=True)
        for s in order:
            st = stretch(s, corpus_files, args.stretch_threads, args.stretch_requests)
            rounds_out.setdefault(("stretch", s.name), []).append(st)
            print(f"  {s.name:<14} c-icap-stretch -t {args.stretch_threads}: "
                  f"{st['rps']:6.1f} req/s ({st['served']} served, {st['failed']} failed, "
                  f"{st['soft_failed']} soft-failed)", flush=True)


def report_throughput(args, servers, rounds_out):
    base = servers[0].name
    print(f"\nthroughput: {args.files} files x {args.passes} per round, --concurrency "
          f"{args.concurrency}, clamd cache {'off' if args.cold else 'on'}; "
          f"medians of {args.rounds} rounds [min-max]")
    print(f"{'server':<14}{'req/s':>22}{'p50 ms':>24}{'p99 ms':>24}{'MB/s':>8}")
    for s in servers:
        ms_ = rounds_out[("closed", s.name)]
        cols = []
        for key, scale in (("rps", 1), ("p50", 1000), ("p99", 1000)):
            med, lo, hi = spread([m[key] * scale for m in ms_])
            cols.append(f"{med:>8.1f} [{lo:.1f}-{hi:.1f}]")
        mb = spread([m["mbps"] for m in ms_])[0]
        print(f"{s.name:<14}{cols[0]:>22}{cols[1]:>24}{cols[2]:>24}{mb:>8.1f}")
    for s in servers[1:]:
        pairs = list(zip(rounds_out[("closed", s.name)], rounds_out[("closed", base)]))
        rps = spread([a["rps"] / b["rps"] for a, b in pairs])
        p99 = spread([a["p99"] / b["p99"] for a, b in pairs])
        print(f"ratio {s.name} / {base}: req/s {rps[0]:.2f} [{rps[1]:.2f}-{rps[2]:.2f}] "
              f"(> 1: {s.name} faster); p99 {p99[0]:.2f} [{p99[1]:.2f}-{p99[2]:.2f}] "
              f"(< 1: {s.name} faster)")
    print(f"c-icap-stretch -t {args.stretch_threads} -m {args.stretch_requests} (context only: "
          f"its own sleeps cap it near 1.5 req/s per thread)")
    for s in servers:
        med, lo, hi = spread([m["rps"] for m in rounds_out[("stretch", s.name)]])
        print(f"{s.name:<14}{med:>8.1f} req/s [{lo:.1f}-{hi:.1f}]")


# ----------------------------------------------------------------------------- per-file --

def timed(argv, env=None, ok=(0,)):
    t = time.perf_counter()
    run = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t
    if run.returncode not in ok:
        sys.exit(f"{argv[:6]}... failed ({run.returncode}):\n"
                 f"{run.stderr.decode(errors='replace')[-3000:]}")
    return elapsed, run.stdout.decode(errors="replace")


def raw_loop(cicap, files):
    """Seconds for RESPMODs of `files` one after the other, a connection each (Preview 1024,
    Allow: 204, as c-icap offers), from this process."""
    t = time.perf_counter()
    for p in files:
        with open(p, "rb") as f:
            cicap.respmod(f.read(), preview=1024)
    return time.perf_counter() - t


def client_loop_argv(server, list_file):
    loop = (f'while IFS= read -r f; do {C_ICAP_CLIENT} -i {server.host} -p {server.port} '
            f'-s {server.service} -f "$f" -v >/dev/null 2>&1; done < {shlex.quote(list_file)}')
    return ["/bin/sh", "-c", loop]


def part_per_file(args, tmp, cicap, files, expected, binary):
    n = len(files)
    lists = {}
    for k, chosen in (("n", files), ("1", files[:1])):
        lists[k] = os.path.join(tmp, f"loop-{k}.txt")
        with open(lists[k], "w") as f:
            f.write("".join(p + "\n" for p in chosen))
    # c-icap-client's answers, once, checked like the throughput part's.
    got = set()
    for p in files:
        r = c_icap_client(cicap.url, p)
        if r.status not in (200, 204):
            sys.exit(f"c-icap-client on {p}: {r.status_line}\n{r.stderr[-1000:]}")
        if r.status == 200 and threat_names(r.headers):
            got.add(p)
    want = set(files) & expected
    if got != want:
        sys.exit(f"c-icap-client disagrees with the corpus: {sorted(got ^ want)[:5]}")
    print(f"per-file: {n} files ({len(want)} infected), answers checked; "
          f"(T({n}) - T(1)) / {n - 1}")
    server = Server("c-icap", "127.0.0.1", cicap.port, CIcap.SERVICE)
    ours_env = ours_dirs = None
    if binary:
        ours_dirs = {}
        for k, chosen in (("n", files), ("1", files[:1])):
            d = os.path.join(tmp, f"analyze-{k}")
            os.makedirs(d)
            for p in chosen:
                os.link(p, os.path.join(d, f"{len(os.listdir(d)):04d}-{os.path.basename(p)}"))
            ours_dirs[k] = d
        ours_env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAMD_", "ICAP_"))}
        ours_env["ICAP_URL"] = cicap.url
        _, out = timed([binary, "--engine", "icap", "analyze", "--concurrency", "1",
                        ours_dirs["n"]], ours_env, ok=(0, 1))
        ours_got = {os.path.basename(p).split("-", 1)[1] for p, _ in infected(out.splitlines())}
        if ours_got != {os.path.basename(p) for p in want}:
            sys.exit(f"pssupervise --engine icap disagrees with c-icap-client: "
                     f"{sorted(ours_got ^ {os.path.basename(p) for p in want})[:5]}\n{out[-2000:]}")
    rows = {}
    for r in range(args.rounds):
        print(f"== per-file round {r + 1}/{args.rounds}; {load()}", flush=True)
        t_n, _ = timed(client_loop_argv(server, lists["n"]))
        t_1, _ = timed(client_loop_argv(server, lists["1"]))
        rows.setdefault("c-icap-client loop", []).append((t_n - t_1) / (n - 1))
        t_n, t_1 = raw_loop(cicap, files), raw_loop(cicap, files[:1])
        rows.setdefault("raw client, in-process", []).append((t_n - t_1) / (n - 1))
        if binary:
            argv = [binary, "--engine", "icap", "analyze", "--concurrency", "1"]
            t_n, _ = timed(argv + [ours_dirs["n"]], ours_env, ok=(0, 1))
            t_1, _ = timed(argv + [ours_dirs["1"]], ours_env, ok=(0, 1))
            rows.setdefault("pssupervise --engine icap", []).append((t_n - t_1) / (n - 1))
        for name, v in rows.items():
            print(f"  {name:<28}{ms(v[-1]):8.2f} ms/file", flush=True)
    print(f"\nper-file cost, medians of {args.rounds} rounds [min-max]")
    for name, v in rows.items():
        med, lo, hi = spread(v)
        print(f"{name:<28}{ms(med):8.2f} ms [{ms(lo):.2f}-{ms(hi):.2f}]")
    if "pssupervise --engine icap" in rows:
        ours = rows["pssupervise --engine icap"]
        for base_name in ("c-icap-client loop", "raw client, in-process"):
            med, lo, hi = spread([a / b for a, b in zip(ours, rows[base_name])])
            print(f"ratio pssupervise --engine icap / {base_name}: {med:.2f} "
                  f"[{lo:.2f}-{hi:.2f}] (< 1: pssupervise cheaper per file)")


# ---------------------------------------------------------------------------------- main --

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary", nargs="?", default=os.path.join(SOURCE_ROOT, "build", "pssupervise"))
    ap.add_argument("--part", action="append", choices=("throughput", "per-file", "all"))
    ap.add_argument("--ours", action="store_true",
                    help="also measure pssupervise: its icap command (throughput) and its icap "
                    "engine (per-file)")
    ap.add_argument("--server-cmd", default=OURS_CMD,
                    help="how --ours starts our server ({binary}, {port}, {clamd_socket}; "
                    f"default: {OURS_CMD!r})")
    ap.add_argument("--service", default="avscan", help="the service path of started servers")
    ap.add_argument("--server", action="append", default=[], metavar="NAME=URL",
                    help="an ICAP server already running, measured in the same rounds")
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--loop-files", type=int, default=100, help="per-file: N")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--passes", type=int, default=2, help="throughput: the corpus per round")
    ap.add_argument("--cold", action="store_true",
                    help="clamd with DisableCache yes: every request really scanned (default: "
                    "warm, clamd answers repeated clean files from its cache, so the ICAP "
                    "servers' own costs show)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--stretch-threads", type=int, default=8)
    ap.add_argument("--stretch-requests", type=int, default=100)
    args = ap.parse_args()
    parts = set(args.part or ["all"])
    if "all" in parts:
        parts = {"throughput", "per-file"}
    binary = os.path.abspath(args.binary) if args.ours else None
    if binary:
        if not os.access(binary, os.X_OK):
            sys.exit(f"--ours: no executable {binary}")
        if ("throughput" in parts and args.server_cmd == OURS_CMD
                and not has_subcommand(binary, "icap")):
            sys.exit(f"--ours: {binary} has no `icap` command yet (its --help lists no such "
                     f"subcommand); run without --ours for the c-icap baseline, or with "
                     f"--part per-file for the icap engine alone")
        probe = subprocess.run([binary, "--engine", "icap", "engines"], capture_output=True,
                               text=True) if "per-file" in parts else None
        if probe and "unknown driver" in probe.stdout + probe.stderr:
            sys.exit(f"--ours: {binary} has no icap driver yet: "
                     f"{(probe.stdout + probe.stderr).strip()[:300]}")
    print(f"machine: {os.cpu_count()} cores; {load()}")
    tmp = tempfile.mkdtemp(prefix="pss-icapbench-")
    started = []
    try:
        corpus = os.path.join(tmp, "corpus")
        total = make_corpus(corpus, args.files)
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(corpus) for f in fs)
        expected = set()
        for p in files:
            with open(p, "rb") as f:
                if EICAR in f.read():
                    expected.add(p)
        print(f"corpus: {len(files)} files, {total / 1e6:.1f} MB, {len(expected)} carry EICAR")
        clamd = Clamd(tmp, extra_config=["DisableCache yes"] if args.cold else [])
        started.append(clamd)
        cicap = CIcap(tmp, clamd.socket)
        started.append(cicap)
        print(f"clamd MaxThreads 2 (unix socket), cache {'off' if args.cold else 'on'}; "
              f"c-icap {cicap.url}: StartServers 1, "
              f"MaxServers 2, ThreadsPerChild 4, virus_scan mode=simple via clamd_mod")
        servers = [Server("c-icap", "127.0.0.1", cicap.port, CIcap.SERVICE)]
        if binary and "throughput" in parts:
            s = start_server("pssupervise", args.server_cmd.replace("{binary}", binary),
                             clamd, args.service, tmp)
            started.append(s)
            servers.append(s)
        servers += [parse_server(t) for t in args.server]
        if "throughput" in parts:
            # A first pass that is not timed: clamd's cache and the page cache warm, the
            # answers checked. Timed rounds then compare the servers, not first-scan costs.
            for s in servers:
                m = measure(s.host, s.port, s.service, files, args.concurrency)
                check_verdicts(s.name, m["verdicts"], expected)
                print(f"[{s.name}] answers checked: {len(expected)} infected, "
                      f"{len(files) - len(expected)} clean (warm-up {m['seconds']:.1f} s)")
            rounds_out = {}
            part_throughput(args, servers, files, expected, rounds_out)
            report_throughput(args, servers, rounds_out)
            print(f"({load()})", flush=True)
        if "per-file" in parts:
            print()
            part_per_file(args, tmp, cicap, files[:args.loop_files], expected, binary)
            print(f"({load()})", flush=True)
    finally:
        for s in reversed(started):
            s.stop()
        leftovers(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    main()
