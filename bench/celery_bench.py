#!/usr/bin/python3
"""Benchmark: 500 bounties through `pssupervise worker` (C++) and through a Python Celery
worker (Debian's python3-celery, prefork pool, same concurrency, a task streaming the file to
clamd with python3-pyclamd), same broker, same redis-server for results, same clamd, same
Python client, one run. The broker is a redis-server, or with --broker amqp a rabbitmq-server.

Both workers ack late with a prefetch of one per slot (the Python one is configured so).
Prints tasks/s, the ratio C++/Python, and each worker's peak RSS (its whole process tree;
clamd is shared and not counted). The corpus is clamd_bench.py's mix.
Usage: celery_bench.py PSSUPERVISE_BINARY [--tasks N] [--concurrency N] [--broker redis|amqp]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
sys.path.insert(0, HERE)
os.environ.setdefault("PSS_BINARY", "unused")
os.environ.setdefault("PSS_SOURCE_ROOT", os.path.join(HERE, ".."))
from common import Clamd, RabbitMQServer, RedisServer  # noqa: E402
from clamd_bench import make_corpus  # noqa: E402

PY_APP = r'''
import os
import pyclamd
from celery import Celery

# Every figure here is of scans: the result cache (on by default) would answer repeats.
os.environ.setdefault("PSS_CACHE", "off")

app = Celery("pybench", broker=os.environ["BENCH_BROKER"], backend=os.environ["BENCH_REDIS"])
if os.environ.get("BENCH_PY_LATE") == "1":  # our semantics; else Celery's defaults
    app.conf.task_acks_late = True
    app.conf.worker_prefetch_multiplier = 1

@app.task(name="pssupervise.analyze")
def analyze(bounty):
    path = bounty["artifact_uri"][len("file://"):]
    cd = pyclamd.ClamdUnixSocket(filename=os.environ["BENCH_CLAMD"])
    with open(path, "rb") as f:
        found = cd.scan_stream(f.read())
    if found:
        return {"result": "malicious", "result_name": list(found.values())[0][1]}
    return {"result": "benign"}
'''


def tree_rss_kib(pid):
    """RSS of pid and all its descendants, in KiB."""
    children = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(p))
            except OSError:
                pass
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class PeakRss(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, tree_rss_kib(self.pid))
            time.sleep(0.05)


def send_all(broker_url, redis_url, queue, paths):
    """Queues one task per file with Python's send_task, before any worker runs."""
    from celery import Celery
    app = Celery("client", broker=broker_url, backend=redis_url)
    ids = [app.send_task("pssupervise.analyze",
                         args=[{"id": i + 1, "artifact_type": "file",
                                "artifact_uri": "file://" + p}], queue=queue).id
           for i, p in enumerate(paths)]
    app.close()
    return ids


def collect(redis_url, ids, timeout=900):
    """Polls the result keys (MGET) until all are there. The worker's throughput is taken
    from the results' own date_done stamps, first to last: neither the client nor the
    worker's start-up is measured. Returns (seconds, results)."""
    import redis
    from datetime import datetime
    r = redis.Redis.from_url(redis_url)
    keys = ["celery-task-meta-" + i for i in ids]
    results = {}
    deadline = time.time() + timeout
    while len(results) < len(keys) and time.time() < deadline:
        missing = [k for k in keys if k not in results]
        for k, v in zip(missing, r.mget(missing)):
            if v is not None:
                meta = json.loads(v)
                if meta["status"] in ("SUCCESS", "FAILURE", "REVOKED"):
                    results[k] = meta
        time.sleep(0.01)
    done = sorted(datetime.fromisoformat(m["date_done"]) for m in results.values())
    span = (done[-1] - done[0]).total_seconds() * len(done) / max(1, len(done) - 1)
    out = [results[k]["result"] if k in results else {"result": "missing"} for k in keys]
    return span, out


def wait_log(path, text, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and text in open(path, errors="replace").read():
            return
        time.sleep(0.1)
    raise SystemExit(f"worker not ready: {open(path, errors='replace').read()[-3000:]}")


def run_corpus(args, tmp, env, broker_url, redis, corpus, desc, procs):
    paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(corpus) for f in fs)
    results = {}
    # Ours twice: passing the open file (FILDES, the default on a unix socket) and
    # streaming it (INSTREAM, what pyclamd does).
    for transfer in ("fildes", "instream"):
        ids = send_all(broker_url, redis.url, "cppbench", paths)
        log = os.path.join(tmp, f"cpp-{transfer}-{len(paths)}-{os.path.basename(corpus)}.log")
        cpp = subprocess.Popen([args.binary, "--log-level", "info", "--engine", "clamav",
                                "worker", "--broker", broker_url, "--result-backend",
                                redis.url, "--queue", "cppbench",
                                "--concurrency", str(args.concurrency),
                                "--allow-file-prefix", corpus],
                               stdout=subprocess.DEVNULL, stderr=open(log, "w"),
                               env=dict(env, CLAMAV_TRANSFER=transfer))
        procs.append(cpp)
        peak = PeakRss(cpp.pid)
        peak.start()
        dt, out = collect(redis.url, ids)
        peak.running = False
        results[f"C++ pssupervise worker ({transfer})"] = (dt, peak.peak, out)
        cpp.terminate()
        cpp.wait(60)

    # Python twice: with our semantics (late ack, prefetch 1 per slot) and with Celery's
    # defaults (ack on receipt, prefetch 4 per slot: faster, and loses tasks on a crash).
    for late, label in (("1", "late ack, prefetch 1"), ("0", "defaults")):
        ids = send_all(broker_url, redis.url, "pybench", paths)
        log = os.path.join(tmp, f"py{late}-{os.path.basename(corpus)}.log")
        py = subprocess.Popen(["/usr/bin/python3", "-m", "celery", "-A", "pyapp", "worker",
                               "-Q", "pybench", "-c", str(args.concurrency), "-P", "prefork",
                               "--without-gossip", "--without-mingle", "--without-heartbeat",
                               "-l", "info"],
                              stdout=open(log, "w"), stderr=subprocess.STDOUT,
                              env=dict(env, BENCH_PY_LATE=late), cwd=tmp)
        procs.append(py)
        peak = PeakRss(py.pid)
        peak.start()
        dt, out = collect(redis.url, ids)
        peak.running = False
        results[f"Python Celery prefork ({label})"] = (dt, peak.peak, out)
        py.terminate()
        py.wait(60)

    n = len(paths)
    print(f"\n{n} tasks ({desc}), concurrency {args.concurrency}, one clamd (cache off), "
          f"{args.broker} broker, results in redis-server, tasks queued first; "
          "time = first to last result (date_done)")
    print(f"{'worker':<46}{'seconds':>9}{'tasks/s':>9}{'peak RSS MiB':>14}{'malicious':>11}")
    for name, (dt, rss, out) in results.items():
        mal = sum(1 for a in out if a["result"] == "malicious")
        print(f"{name:<46}{dt:>9.2f}{n / dt:>9.1f}{rss / 1024:>14.1f}{mal:>11}")
    for label in ("late ack, prefetch 1", "defaults"):
        p = results[f"Python Celery prefork ({label})"]
        for transfer in ("fildes", "instream"):
            c = results[f"C++ pssupervise worker ({transfer})"]
            print(f"C++ ({transfer}) vs Python ({label}): throughput {p[0] / c[0]:.2f}x, "
                  f"memory {c[1] / max(p[1], 1):.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--tasks", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--broker", choices=("redis", "amqp"), default="redis")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pss-celerybench-")
    procs = []
    clamd = redis = rabbit = None
    try:
        clamd = Clamd(tmp, extra_config=["DisableCache yes", f"MaxThreads {args.concurrency}"])
        redis = RedisServer(tmp)
        redis.proc.terminate()
        redis.proc.wait()
        # No append-only file for the benchmark: Python's worker and ours alike.
        redis.proc = subprocess.Popen(
            ["/usr/bin/redis-server", "--port", str(redis.port), "--bind", "127.0.0.1",
             "--dir", redis.dir, "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(0.5)
        broker_url = redis.url
        if args.broker == "amqp":
            rabbit = RabbitMQServer(tmp)
            broker_url = rabbit.url
        env = dict(os.environ, CLAMD_SOCKET=clamd.socket, BENCH_REDIS=redis.url,
                   BENCH_BROKER=broker_url,
                   BENCH_CLAMD=clamd.socket, PYTHONPATH=tmp, TMPDIR=tmp)
        with open(os.path.join(tmp, "pyapp.py"), "w") as f:
            f.write(PY_APP)
        # Mixed files (clamd's scanning dominates) and small ones (the workers' own cost does).
        mixed = os.path.join(tmp, "mixed")
        total = make_corpus(mixed, args.tasks)
        small = os.path.join(tmp, "small")
        os.makedirs(small)
        for i in range(args.tasks):
            with open(os.path.join(small, f"s{i:04d}.txt"), "wb") as f:
                f.write((b"small clean file %d " % i) * 100)
        for name, corpus, desc in (
                ("mixed", mixed, f"{total / 2**20:.0f} MiB, clamd_bench.py's mix"),
                ("small", small, "2 KiB each")):
            run_corpus(args, tmp, env, broker_url, redis, corpus, desc, procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        # By pid: redis-server rewrites its command line, so a pattern would miss it.
        for server in (redis, clamd):
            if server is not None:
                server.stop()
        if rabbit is not None:
            rabbit.close()
        subprocess.run(["pkill", "-f", tmp], stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
