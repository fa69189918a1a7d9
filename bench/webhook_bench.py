#!/usr/bin/python3
"""Benchmark: `pssupervise webhook` under wrk on loopback, with signed requests.

Phase 1, ping: signed `X-POLYSWARM-EVENT: ping` requests (the whole request path: parsing,
HMAC verification in constant time, routing, the answer) for --seconds; peak and final RSS
sampled every 100 ms show whether memory stays flat. Phase 2, bounty: signed bounties with a
data: artifact, the queue bounded (--queue-limit): 202 while there is room, 503 with
Retry-After beyond — the front end never waits for the scans. Prints requests/s, p50/p99
latency, non-2xx/5xx counts and RSS.
Usage: webhook_bench.py PSSUPERVISE [--seconds N] [--connections N] [--threads N]
"""
import argparse
import hashlib
import hmac
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
LUA = r'''
wrk.method = "POST"
wrk.body = BODY
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-POLYSWARM-EVENT"] = EVENT
wrk.headers["X-POLYSWARM-SIGNATURE"] = SIG
local codes = {}
response = function(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end
done = function(summary, latency, requests)
  io.write(string.format("P50 %.3f\nP99 %.3f\n", latency:percentile(50) / 1000,
                         latency:percentile(99) / 1000))
end
'''


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def wrk(url, event, body, seconds, connections, threads, tmp):
    sig = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    script = os.path.join(tmp, f"{event}.lua")
    with open(script, "w") as f:
        f.write(f"BODY = {json.dumps(body)}\nEVENT = \"{event}\"\nSIG = \"{sig}\"\n" + LUA)
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d",
                          f"{seconds}s", "--latency", "-s", script, url],
                         capture_output=True, text=True).stdout
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"requests": reqs, "rps": rps, "p50": float(re.search(r"P50 ([\d.]+)", out).group(1)),
            "p99": float(re.search(r"P99 ([\d.]+)", out).group(1)),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else "none", "raw": out}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--queue-limit", type=int, default=1000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pss-webhookbench-")
    run = os.path.join(tmp, "run")
    os.makedirs(run, mode=0o700)
    log = os.path.join(tmp, "webhook.log")
    env = dict(os.environ, CLAMAV_RUNTIME_DIR=run, TMPDIR=tmp)
    with open(log, "w") as err:
        proc = subprocess.Popen([args.binary, "webhook", "-p", "0", "--secret", SECRET,
                                 "--queue-limit", str(args.queue_limit)],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        for _ in range(600):
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", open(log).read())
            if m:
                break
            time.sleep(0.1)
        url = f"http://127.0.0.1:{m.group(1)}/"
        samples = []
        stop = False

        def sample():
            while not stop:
                samples.append(rss_kib(proc.pid))
                time.sleep(0.1)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        rss_start = rss_kib(proc.pid)
        ping = wrk(url, "ping", "", args.seconds, args.connections, args.threads, tmp)
        rss_after_ping = rss_kib(proc.pid)
        peak_ping = max(samples)
        bounty = json.dumps({"id": 1, "artifact_type": "file",
                             "artifact_uri": "data:,a%20clean%20file",
                             "expiration": "2099-01-01T00:00:00Z"})
        b = wrk(url, "bounty", bounty, max(5, args.seconds // 6), args.connections, args.threads,
                tmp)
        stop = True
        t.join()
        print(f"wrk -t{args.threads} -c{args.connections}, loopback, signed requests "
              f"(HMAC-SHA256 verified on each)")
        print(f"{'phase':<10}{'seconds':>8}{'requests':>10}{'req/s':>10}{'p50 ms':>8}"
              f"{'p99 ms':>8}{'non-2xx':>9}  socket errors")
        for name, r, secs in (("ping", ping, args.seconds),
                              ("bounty", b, max(5, args.seconds // 6))):
            print(f"{name:<10}{secs:>8}{r['requests']:>10}{r['rps']:>10.0f}{r['p50']:>8.2f}"
                  f"{r['p99']:>8.2f}{r['non2xx']:>9}  {r['socket_errors']}")
        accepted = b["requests"] - b["non2xx"]
        print(f"bounty phase: {accepted} accepted (202), {b['non2xx']} turned away (503 "
              f"Retry-After) with --queue-limit {args.queue_limit}")
        print(f"RSS: {rss_start / 1024:.1f} MiB at start, {peak_ping / 1024:.1f} MiB peak during "
              f"the {args.seconds} s ping run, {rss_after_ping / 1024:.1f} MiB after it, "
              f"{max(samples) / 1024:.1f} MiB peak overall")
    finally:
        proc.terminate()
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
