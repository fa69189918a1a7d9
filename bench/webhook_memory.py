#!/usr/bin/python3
"""Benchmark: memory of `pssupervise --engine clamav` for large and many data: artifacts.

1. webhook, one large bounty: `webhook --body-limit 100M` receives ONE signed bounty whose
   artifact is a --large-mb MB data: URI (base64: a body of ~1.34x that); the peak RSS
   (VmHWM, /proc/PID/status) is read once the answer reached our loopback response_url, and
   divided by the body size.
2. analyze -t bounty: the same bounty as a file; VmHWM polled every few ms until the process
   exits (the peak is while the bounty is read and decoded, long before the exit). The
   wait4() maxrss is printed too: an upper bound that also counts clamd, its child.
3. webhook, a flood: --flood bounties of ~--flood-body-kib KiB bodies each (data: artifacts,
   base64), sent by --senders connections at once to a fresh webhook (--queue-limit above
   the flood); RSS idle before it (after one small bounty: what is set up once is not
   counted as left by the flood), VmHWM at its peak, and RSS once every answer arrived (at
   once, and --settle seconds later); ratio after/idle, and the anonymous part (RssAnon).
Prints figures only; nothing passes or fails on them. The environment is passed on: e.g.
GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072 gives
pssupervise the thresholds util/memory's tune_allocator() sets.
Usage: webhook_memory.py PSSUPERVISE [--large-mb N] [--flood N] [--flood-body-kib N]
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

# Every figure here is of scans: the result cache (on by default) would answer repeats.
os.environ.setdefault("PSS_CACHE", "off")

SECRET = "bench-secret"
MIB = 1024 * 1024


def proc_status_kib(pid, field):
    """A /proc/PID/status field in KiB (VmRSS, VmHWM), or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def mib(kib):
    return kib / 1024


class Receiver:
    """The response_url: counts the answers, one per bounty id (the id is in the path)."""

    def __init__(self):
        self.ids = set()
        self.cond = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.cond:
                    outer.ids.add(self.path.rsplit("/", 1)[-1])
                    outer.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/answer"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.ids) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"only {len(self.ids)} answers of {n} after {timeout} s")
                self.cond.wait(left)

    def close(self):
        self.server.shutdown()


def bounty_body(bid, artifact, response_url):
    uri = "data:application/octet-stream;base64," + base64.b64encode(artifact).decode()
    return json.dumps({"id": bid, "artifact_type": "file", "artifact_uri": uri,
                       "expiration": "2099-01-01T00:00:00Z",
                       "response_url": f"{response_url}/{bid}"}).encode()


def post(port, body):
    sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        c.request("POST", "/", body=body, headers={
            "Content-Type": "application/json", "X-POLYSWARM-EVENT": "bounty",
            "X-POLYSWARM-SIGNATURE": sig})
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


class Webhook:
    def __init__(self, binary, env, tmp, *extra):
        self.log = os.path.join(tmp, f"webhook-{time.monotonic_ns()}.log")
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen(
                [binary, "--engine", "clamav", "webhook", "-p", "0", "--secret", SECRET,
                 "--allow-private-networks", "--body-limit", "100M", *extra],
                stdout=subprocess.DEVNULL, stderr=err, env=env)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", open(self.log).read())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        else:
            self.port = None
        if self.port is None:
            raise SystemExit("webhook did not start:\n" + open(self.log).read())

    def rss(self):
        return proc_status_kib(self.proc.pid, "VmRSS")

    def hwm(self):
        return proc_status_kib(self.proc.pid, "VmHWM")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def large_webhook(binary, env, tmp, body, receiver):
    hook = Webhook(binary, env, tmp)
    try:
        idle = hook.rss()
        status = post(hook.port, body)
        if status != 202:
            raise SystemExit(f"the large bounty was answered {status}:\n" + open(hook.log).read())
        receiver.wait(1, 600)
        return idle, hook.hwm()
    finally:
        hook.stop()


def large_analyze(binary, env, tmp, body):
    path = os.path.join(tmp, "large-bounty.json")
    with open(path, "wb") as f:
        f.write(body)
    out_path = os.path.join(tmp, "analyze.out")
    with open(out_path, "wb") as out, open(os.path.join(tmp, "analyze.err"), "wb") as err:
        proc = subprocess.Popen([binary, "--engine", "clamav", "analyze", "-t", "bounty", path],
                                stdout=out, stderr=err, env=env)
    peak = 0
    while True:
        hwm = proc_status_kib(proc.pid, "VmHWM")
        if hwm:
            peak = max(peak, hwm)
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        time.sleep(0.002)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    os.unlink(path)
    with open(out_path, errors="replace") as f:
        stdout = f.read().strip()
    # wait4's maxrss is the largest of pssupervise and the children it reaped (clamd).
    return peak, usage.ru_maxrss, proc.returncode, stdout


def flood(binary, env, tmp, n, body_kib, senders, settle):
    receiver = Receiver()
    hook = Webhook(binary, env, tmp, "--queue-limit", str(n + 100))
    try:
        time.sleep(1)  # a benchmark, not a test: let start-up allocations settle
        cold = hook.rss()
        # One bounty first, so that what is set up once (threads, libmagic's database mapped by
        # each fetching thread) is in the idle figure: what a flood leaves is then measured
        # against a webhook that has already served.
        post(hook.port, bounty_body(1, b"warm-up", receiver.url))
        receiver.wait(1, 600)
        time.sleep(1)
        idle = hook.rss()
        idle_anon = proc_status_kib(hook.proc.pid, "RssAnon")
        artifact_len = body_kib * 1024 * 3 // 4 - 300  # base64 and the JSON around it
        base = os.urandom(artifact_len)
        first_id = 1000
        next_id = [first_id]
        lock = threading.Lock()
        statuses = {}
        sent_bytes = [0]

        def sender():
            while True:
                with lock:
                    bid = next_id[0]
                    if bid >= first_id + n:
                        return
                    next_id[0] += 1
                body = bounty_body(bid, bid.to_bytes(8, "big") + base[8:], receiver.url)
                s = post(hook.port, body)
                with lock:
                    statuses[s] = statuses.get(s, 0) + 1
                    sent_bytes[0] += len(body)

        peak_rss = [0]
        sampling = [True]

        def sample():
            while sampling[0]:
                r = hook.rss() or 0
                peak_rss[0] = max(peak_rss[0], r)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        threads = [threading.Thread(target=sender) for _ in range(senders)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sent_at = time.monotonic() - start
        accepted = statuses.get(202, 0)
        receiver.wait(accepted + 1, 3600)
        drained_at = time.monotonic() - start
        after = hook.rss()
        time.sleep(settle)
        after_settled = hook.rss()
        after_anon = proc_status_kib(hook.proc.pid, "RssAnon")
        sampling[0] = False
        sampler.join()
        return {"cold": cold, "idle_anon": idle_anon, "after_anon": after_anon, "idle": idle, "hwm": hook.hwm(), "peak_sampled": peak_rss[0], "after": after,
                "after_settled": after_settled, "statuses": statuses,
                "sent_bytes": sent_bytes[0], "sent_at": sent_at, "drained_at": drained_at}
    finally:
        hook.stop()
        receiver.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--large-mb", type=int, default=50, help="the large artifact, in MB (1e6)")
    ap.add_argument("--flood", type=int, default=1000, help="bounties in the flood")
    ap.add_argument("--flood-body-kib", type=int, default=1024, help="each flood body, in KiB")
    ap.add_argument("--senders", type=int, default=8, help="flood connections at once")
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds after the flood drained for the second RSS reading")
    ap.add_argument("--skip", action="append", default=[],
                    choices=["webhook", "analyze", "flood"], help="a part not to run")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pss-membench-")
    run = os.path.join(tmp, "run")
    os.makedirs(run, mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAMAV_", "CLAMD_"))}
    env.update(CLAMAV_RUNTIME_DIR=run, TMPDIR=tmp)
    receiver = Receiver()
    try:
        large = os.urandom(args.large_mb * 1000 * 1000)
        body = bounty_body(1, large, receiver.url)
        n = len(body)
        print(f"large bounty: a {len(large) / 1e6:.0f} MB data: artifact, a body of "
              f"{n / 1e6:.1f} MB ({mib(n / 1024):.1f} MiB)")
        if "webhook" not in args.skip:
            idle, peak = large_webhook(args.binary, env, tmp, body, receiver)
            print(f"  webhook --body-limit 100M: idle {mib(idle):.1f} MiB, peak (VmHWM) "
                  f"{mib(peak):.1f} MiB = {peak * 1024 / n:.2f}x the body")
        if "analyze" not in args.skip:
            peak, children, code, out = large_analyze(args.binary, env, tmp, body)
            print(f"  analyze -t bounty: peak (VmHWM) {mib(peak):.1f} MiB = "
                  f"{peak * 1024 / n:.2f}x the body (wait4 maxrss, with clamd: "
                  f"{mib(children):.1f} MiB); exit {code}: {out[:100]}")
        del large, body
        if "flood" not in args.skip:
            f = flood(args.binary, env, tmp, args.flood, args.flood_body_kib, args.senders,
                      args.settle)
            print(f"flood: {args.flood} bounties of {args.flood_body_kib} KiB, "
                  f"{f['sent_bytes'] / 1e9:.2f} GB sent in {f['sent_at']:.1f} s by "
                  f"{args.senders} connections, statuses {f['statuses']}, all answered after "
                  f"{f['drained_at']:.1f} s")
            print(f"  webhook RSS: {mib(f['cold']):.1f} MiB started, idle {mib(f['idle']):.1f} MiB "
                  f"(after one bounty), peak {mib(f['hwm']):.1f} MiB (VmHWM; sampled every "
                  f"50 ms: {mib(f['peak_sampled']):.1f}), after the drain "
                  f"{mib(f['after']):.1f} MiB, {args.settle:g} s later "
                  f"{mib(f['after_settled']):.1f} MiB = {f['after_settled'] / f['idle']:.2f}x "
                  f"idle ({f['after_settled'] / f['cold']:.2f}x started)")
            print(f"  of which anonymous (heap, stacks; RssAnon): idle "
                  f"{mib(f['idle_anon']):.1f} MiB, after {mib(f['after_anon']):.1f} MiB")
    finally:
        receiver.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
