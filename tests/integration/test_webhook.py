#!/usr/bin/python3
"""`pssupervise webhook` over real HTTP on loopback: every status code of the PolySwarm
webhook protocol, a signed EICAR bounty answered at a local response_url that checks our
signature, an expired bounty, a receiver that fails twice, 500 bounties in flight, the
queue limit, SSRF refusals, /metrics."""
import base64
import hashlib
import hmac
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (BINARY, EICAR, MARKER, PATIENCE, PssTestCase, children_of,  # noqa: E402
                    fake_engine, live_pids, runs_of, wait_until)

SECRET = "t0p-s3cret"
EICAR_URI = "data:;base64," + __import__("base64").b64encode(EICAR).decode()


def sign(body, secret=SECRET):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Receiver:
    """A response_url endpoint: checks our signature, can fail the first N requests, answer
    every request with `status`, or never answer at all (`hang`)."""

    def __init__(self, fail_first=0, status=200, hang=False):
        self.answers, self.attempts, self.bad_signatures = [], 0, 0
        self.fail_first, self.status, self.hang = fail_first, status, hang
        self.lock = threading.Lock()
        self.released = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    outer.attempts += 1
                    failing = outer.attempts <= outer.fail_first or outer.status != 200
                    if not failing and not outer.hang:
                        good = hmac.compare_digest(sign(body),
                                                   self.headers.get("X-POLYSWARM-SIGNATURE", ""))
                        if not good:
                            outer.bad_signatures += 1
                        outer.answers.append((dict(self.headers), json.loads(body)))
                if outer.hang:
                    outer.released.wait(PATIENCE * 3)
                    return
                self.send_response(outer.status if outer.status != 200 else
                                   500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/answer"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n, timeout=PATIENCE):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.answers) >= n:
                    return list(self.answers)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.answers)} answers of {n} after {timeout} s")

    def close(self):
        self.released.set()
        self.server.shutdown()


class SlowArtifacts:
    """An artifact server that trickles each download one byte at a time, every 0.2 s, and
    finishes only once released: a download that is slow, not dead."""

    def __init__(self, size=1000000):
        self.started, self.finished = 0, 0
        self.lock = threading.Lock()
        self.released = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with outer.lock:
                    outer.started += 1
                self.send_response(200)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                try:
                    for _ in range(size):
                        if outer.released.is_set():
                            return  # the test is over: cut short
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        outer.released.wait(0.2)
                except OSError:
                    return  # the client gave up
                with outer.lock:
                    outer.finished += 1

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.released.set()
        self.server.shutdown()


def closed_port():
    """A loopback port nothing listens on: connections to it are refused."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class WebhookTestCase(PssTestCase):
    def setUp(self):
        super().setUp()
        self.proc = None
        self.receivers = []

    def tearDown(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)
        for r in self.receivers:
            r.close()
        super().tearDown()

    def receiver(self, **kw):
        r = Receiver(**kw)
        self.receivers.append(r)
        return r

    def slow_artifacts(self):
        r = SlowArtifacts()
        self.receivers.append(r)
        return r

    def wait_metric(self, line, timeout=PATIENCE):
        """Waits until /metrics shows `line`: a receiver has our answer before its 200 reaches
        us, and the delivery is counted only then."""
        wait_until(lambda: line in self.metrics(), timeout=timeout, what=f"{line!r} in /metrics",
                   details=self.metrics)

    def wait_log(self, pattern):
        """Waits until the webhook's log matches `pattern` (a regular expression)."""
        wait_until(lambda: re.search(pattern, self.read_log()), what=f"{pattern!r} in the log",
                   details=self.read_log)

    def start(self, *args, engine="clamav", engines_dir=None, secret=SECRET, env=None,
              private_networks=True):
        """Starts the webhook; `private_networks`: with --allow-private-networks, since the
        receivers of our answers listen on loopback."""
        cmd = [BINARY, "--log-level", "info"]
        if engines_dir:
            cmd += ["--engines-dir", engines_dir]
        cmd += ["--engine", engine, "webhook", "-p", "0", *args]
        if private_networks:
            cmd += ["--allow-private-networks"]
        if secret:
            cmd += ["--secret", secret]
        e = dict(self.env)
        e.update(env or {})
        self.log = os.path.join(self.tmp, "webhook.log")
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=e,
                                         cwd=self.tmp)
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            m = re.search(r"pssupervise webhook: listening on 127\.0\.0\.1:(\d+)", self.read_log())
            if m:
                self.base = f"http://127.0.0.1:{m.group(1)}"
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.fail("webhook did not start:\n" + self.read_log())

    def read_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def request(self, path="/", body=None, event="bounty", signature=True, headers=None,
                method=None):
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        h = {}
        if data is not None or method == "POST":
            h["X-POLYSWARM-EVENT"] = event
            if signature is True:
                h["X-POLYSWARM-SIGNATURE"] = sign(data or b"")
            elif signature:
                h["X-POLYSWARM-SIGNATURE"] = signature
        h.update(headers or {})
        req = urllib.request.Request(self.base + path, data=data, headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=PATIENCE) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def bounty(self, uri=EICAR_URI, response_url=None, bid=1, expires_in=600, **extra):
        # Expiring far beyond need: a bounty answered late on a loaded machine is still on time.
        b = {"id": bid, "artifact_type": "file", "artifact_uri": uri,
             "expiration": (datetime.now(timezone.utc) + timedelta(seconds=expires_in))
             .strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")}
        if response_url:
            b["response_url"] = response_url
        b.update(extra)
        return b

    def metrics(self):
        status, _, body = self.request("/metrics")
        self.assertEqual(status, 200)
        return body.decode()


class ProtocolTest(WebhookTestCase):
    def test_every_status_code(self):
        self.start("--body-limit", "4K")
        self.assertEqual(self.request("/")[::2], (200, b'{"status":"OK"}'))
        self.assertEqual(self.request("/clamav")[::2], (200, b'{"status":"OK"}'))
        self.assertEqual(self.request("/nope")[0], 404)
        self.assertEqual(self.request("/", b"", event="ping")[::2], (200, b'{"status":"OK"}'))
        b = json.dumps(self.bounty()).encode()
        self.assertEqual(self.request("/", b, signature=False)[0], 400)  # missing signature
        self.assertEqual(self.request("/", b, signature="0" * 64)[0], 401)  # wrong one
        self.assertEqual(self.request("/", b, signature=sign(b, "other"))[0], 401)
        self.assertEqual(self.request("/", b, event="party")[0], 400)  # unknown event
        status, _, body = self.request("/", b'{"id": "not a number"')
        self.assertEqual((status, body), (400, b'{"bounty":"Invalid bounty request"}'))
        self.assertEqual(self.request("/", b"x" * 5000)[0], 413)  # over --body-limit
        self.assertEqual(self.request("/nope", b)[0], 404)  # unknown engine
        self.assertEqual(self.request("/", headers={"X-Big": "y" * 20000})[0], 431)
        self.assertEqual(self.request("/", method="DELETE")[0], 405)
        status, _, body = self.request("/clamav", b)
        self.assertEqual((status, body), (202, b'{"status":"ACCEPTED"}'))
        m = self.metrics()
        self.assertIn('pss_http_requests_total{code="401"} 2', m)
        self.assertIn('pss_http_requests_total{code="413"} 1', m)

    def test_refuses_to_start_without_a_secret(self):
        r = self.pss("webhook", "-p", "0")
        self.assertEqual(r.code, 2)
        self.assertIn("no webhook secret: give --secret or PSS_WEBHOOK_SECRET", r.stderr)

    def test_insecure_accepts_unsigned_requests_with_a_warning(self):
        self.start("--insecure", secret=None)
        self.assertEqual(self.request("/", b"", event="ping", signature=False)[0], 200)
        self.assertIn("--insecure: accepting unsigned requests", self.read_log())


class AnsweringTest(WebhookTestCase):
    def test_signed_eicar_bounty_is_answered_signed_at_its_response_url(self):
        recv = self.receiver()
        self.start()
        status, _, _ = self.request("/", self.bounty(response_url=recv.url, bid=77),
                                    headers={"X-POLYSWARM-DELIVERY": "d-1"})
        self.assertEqual(status, 202)
        headers, answer = recv.wait(1)[0]
        self.assertEqual(recv.bad_signatures, 0)
        self.assertEqual(answer["verdict"], "malicious")
        self.assertEqual(answer["metadata"]["malware_family"], "Eicar-Test-Signature")
        self.assertEqual(answer["metadata"]["product"], "ClamAV")
        self.assertGreater(answer["bid"], 0)
        self.assertEqual(headers["X-POLYSWARM-EVENT"], "assertion")
        self.assertEqual(headers["X-POLYSWARM-BOUNTY"], "77")
        self.wait_metric('pss_deliveries_total{result="ok"} 1')
        m = self.metrics()
        self.assertIn('pss_scans_total{engine="clamav",verdict="malicious"} 1', m)
        self.assertIn('pss_deliveries_total{result="ok"} 1', m)
        self.assertIn('pss_engine_up{engine="clamav",state="ready"} 1', m)
        self.assertRegex(m, r'pss_scan_latency_seconds_count\{engine="clamav"\} 1')

    def test_arbitration_is_a_vote(self):
        recv = self.receiver()
        self.start()
        self.request("/", self.bounty(response_url=recv.url, phase="arbitration"))
        headers, answer = recv.wait(1)[0]
        self.assertEqual(headers["X-POLYSWARM-EVENT"], "vote")
        self.assertNotIn("bid", answer)
        self.assertEqual(answer["verdict"], "malicious")

    def test_expired_bounty_is_unknown(self):
        recv = self.receiver()
        self.start()
        self.assertEqual(self.request("/", self.bounty(response_url=recv.url,
                                                       expires_in=-5))[0], 202)
        _, answer = recv.wait(1)[0]
        self.assertEqual(answer["verdict"], "unknown")
        self.assertIn("expired", answer["metadata"]["error"])

    def test_a_receiver_failing_twice_gets_the_answer_once(self):
        recv = self.receiver(fail_first=2)
        self.start()
        self.request("/", self.bounty(response_url=recv.url))
        recv.wait(1)
        # Counted as delivered: it has stopped trying, so no attempt is still to come.
        self.wait_metric('pss_deliveries_total{result="ok"} 1')
        self.assertEqual((recv.attempts, len(recv.answers)), (3, 1))
        self.wait_log(r"\(attempt 3, HTTP 200\)")

    def test_500_bounties_in_flight_are_all_answered(self):
        recv = self.receiver()
        self.start("--concurrency", "4")
        clean = "data:,clean%20file%20"
        for i in range(500):
            uri = EICAR_URI if i % 10 == 0 else clean + str(i)
            self.assertEqual(self.request("/", self.bounty(uri, recv.url, bid=i + 1))[0], 202)
        answers = recv.wait(500, timeout=300)
        by_verdict = {}
        for _, a in answers:
            by_verdict[a["verdict"]] = by_verdict.get(a["verdict"], 0) + 1
        self.assertEqual(by_verdict, {"malicious": 50, "benign": 450})
        self.assertEqual(recv.bad_signatures, 0)
        self.assertIn('pss_bounties_total{outcome="answered"} 500', self.metrics())

    def test_a_full_queue_is_503_with_retry_after(self):
        # Every scan lasts until the test releases it: the queue stays full meanwhile.
        engines = os.path.join(self.tmp, "engines")
        release = os.path.join(self.tmp, "release")
        fake_engine(engines, name="slow")
        recv = self.receiver()
        self.start("--concurrency", "1", "--queue-limit", "2", engine="slow",
                   engines_dir=engines, env={"FAKE_UNTIL": release})
        try:
            codes = [self.request("/", self.bounty("data:,x", recv.url, bid=i))[0]
                     for i in range(6)]
            self.assertEqual(codes[:3], [202, 202, 202])  # one scanning, two queued
            self.assertIn(503, codes[3:])
            status, headers, _ = self.request("/", self.bounty("data:,x", recv.url))
            self.assertEqual((status, headers.get("Retry-After")), (503, "1"))
            self.assertIn('pss_bounties_total{outcome="busy"}', self.metrics())
        finally:
            self.write("release", b"")
        recv.wait(codes.count(202))  # what was accepted is still answered

    def test_logs_carry_the_bounty_id(self):
        recv = self.receiver()
        self.start("--concurrency", "1")
        self.request("/", self.bounty(response_url=recv.url, bid=4242))
        recv.wait(1)
        self.assertRegex(self.read_log(), r"bounty 4242: clamav malicious")


class BackendsTest(WebhookTestCase):
    def test_process_backend_answers_and_keeps_the_fetch_policy(self):
        # Without --allow-private-networks, answers to a loopback receiver are refused too:
        # the verdicts are read from the log.
        self.start("--backend", "process", "--concurrency", "2", private_networks=False)
        self.request("/", self.bounty(bid=1))
        self.request("/", self.bounty("http://127.0.0.1:9/x", bid=2))
        self.request("/", self.bounty("file:///etc/passwd", bid=3))
        self.wait_log(r"bounty 1: clamav malicious")
        self.wait_log(r"bounty 2: clamav unknown \(.*127\.0\.0\.1 is a loopback address")
        self.wait_log(r"bounty 3: clamav unknown \(.*file URIs are not allowed here")
        # A worker's log reaches ours through a pipe of its own: it may come after the answers.
        started = lambda: len(re.findall(r"started clamd", self.read_log()))  # noqa: E731
        wait_until(lambda: started() >= 2, what="both workers' clamd to start",
                   details=self.read_log)
        self.assertEqual(started(), 2)  # once each

    def test_process_backend_scans_what_the_webhook_downloaded(self):
        # The artifact is fetched once, by the webhook; the worker scans the file it was given.
        artifacts = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EicarHandler)
        threading.Thread(target=artifacts.serve_forever, daemon=True).start()
        try:
            recv = self.receiver()
            self.start("--backend", "process", "--concurrency", "1")
            port = artifacts.server_address[1]
            self.request("/", self.bounty(f"http://127.0.0.1:{port}/eicar", recv.url, bid=9))
            _, answer = recv.wait(1)[0]
            self.assertEqual(answer["verdict"], "malicious")
            self.assertEqual(EicarHandler.served, 1)
        finally:
            artifacts.shutdown()

    def test_process_backend_metrics_show_what_the_workers_did(self):
        # The workers scan and look up the result cache; the webhook's /metrics counts it all,
        # and keeps the counts of a worker that died.
        self.env["PSS_CACHE"] = os.path.join(self.tmp, "results.sqlite")
        recv = self.receiver()
        self.start("--backend", "process", "--concurrency", "2")
        for bid in (1, 2):  # the second, once the first is answered: a cache hit
            self.assertEqual(self.request("/", self.bounty(response_url=recv.url, bid=bid))[0],
                             202)
            answers = recv.wait(bid)
        self.assertEqual([a["verdict"] for _, a in answers], ["malicious"] * 2)
        self.wait_metric('pss_engine_up{engine="clamav",state="ready"} 1')
        self.wait_metric('pss_cache_lookups_total{engine="clamav",result="miss"} 1')
        self.wait_metric('pss_cache_lookups_total{engine="clamav",result="hit"} 1')
        self.assertIn('pss_engine_restarts{engine="clamav"} 0', self.metrics())
        workers = self.workers()
        self.assertEqual(len(workers), 2, workers)
        os.kill(workers[0], signal.SIGKILL)
        self.wait_metric('pss_engine_restarts{engine="clamav"} 1')
        m = self.metrics()
        self.assertIn('pss_cache_lookups_total{engine="clamav",result="miss"} 1', m)
        self.assertIn('pss_cache_lookups_total{engine="clamav",result="hit"} 1', m)
        self.assertIn('pss_engine_up{engine="clamav",state="ready"} 1', m)  # the other one

    def workers(self):
        """The webhook's worker processes (`__worker`)."""
        return [p for p in children_of(self.proc.pid) if p in live_pids("cmdline", b"__worker")]

    def test_process_backend_scans_each_bounty_with_its_route_engine_only(self):
        # Two engines in every worker process; a bounty routed to one is scanned by it alone.
        engines = os.path.join(self.tmp, "engines")
        runs = {name: os.path.join(self.tmp, f"{name}.runs") for name in ("fakea", "fakeb")}
        for name, log in runs.items():
            fake_engine(engines, name=name, runs=log)
        recv = self.receiver()
        self.start("--backend", "process", "--concurrency", "2", engine="fakea,fakeb",
                   engines_dir=engines)
        for i in range(4):
            self.assertEqual(
                self.request("/fakea", self.bounty(f"data:,clean {i}", recv.url, bid=10 + i))[0],
                202)
        self.request("/fakeb", self.bounty(EICAR_URI, recv.url, bid=20))
        answers = [a for _, a in recv.wait(5)]
        self.assertEqual(len(runs_of(runs["fakea"])), 4, "fakea scanned its four bounties once")
        self.assertEqual(len(runs_of(runs["fakeb"])), 1, "fakeb scanned its one bounty only")
        self.assertEqual(sorted(a["verdict"] for a in answers),
                         ["benign"] * 4 + ["malicious"])

    def check_celery_backend(self, broker_url, results_url):
        """A signed EICAR bounty through `--backend celery` and a `pssupervise worker`."""
        urls = ["--broker", broker_url, "--result-backend", results_url]
        worker = subprocess.Popen([BINARY, "worker", *urls], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=self.env, cwd=self.tmp)
        try:
            recv = self.receiver()
            self.start("--backend", "celery", *urls)
            self.request("/", self.bounty(response_url=recv.url, bid=5))
            _, answer = recv.wait(1)[0]
            self.assertEqual(answer["verdict"], "malicious")
        finally:
            worker.terminate()
            worker.wait(PATIENCE)

    def test_celery_backend_goes_through_a_worker(self):
        from common import RedisServer
        redis = RedisServer(self.tmp)
        try:
            self.check_celery_backend(redis.url, redis.url)
        finally:
            redis.stop()

    def test_celery_backend_on_rabbitmq(self):
        from common import RabbitMQServer, RedisServer
        redis = RedisServer(self.tmp)
        rabbit = RabbitMQServer(self.tmp)
        try:
            self.check_celery_backend(rabbit.url, redis.url)
        finally:
            rabbit.close()
            redis.stop()


class SafetyTest(WebhookTestCase):
    def test_bounties_cannot_reach_private_addresses_or_local_files(self):
        # A listener on loopback: the bounty's fetch must be refused before connecting.
        import socket
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        lst.settimeout(0.5)
        port = lst.getsockname()[1]
        allowed = os.path.join(self.tmp, "allowed")
        os.makedirs(allowed)
        ok_file = self.write("allowed/eicar.com", EICAR)
        secret_file = self.write("secret/passwd", b"root:x:0:0")
        self.start("--allow-file-prefix", allowed, private_networks=False)
        for i, uri in enumerate([f"http://127.0.0.1:{port}/x", "file://" + secret_file,
                                 "file://" + allowed + "/../secret/passwd", "file://" + ok_file]):
            self.request("/", self.bounty(uri, bid=i + 1))
        self.wait_log(r"bounty 1: clamav unknown \(.*127\.0\.0\.1 is a loopback address")
        self.wait_log(r"bounty 2: clamav unknown \(.*outside the directories allowed")
        self.wait_log(r"bounty 3: clamav unknown \(.*outside the directories allowed")
        self.wait_log(r"bounty 4: clamav malicious")
        try:
            with self.assertRaises(OSError):
                lst.accept()  # nothing ever connected
        finally:
            lst.close()

    def test_answers_go_to_no_private_address_by_default(self):
        recv = self.receiver()
        self.start(private_networks=False)
        self.request("/", self.bounty(response_url=recv.url, bid=8))
        self.wait_log(r"bounty 8: answer NOT delivered to .*: refused: 127\.0\.0\.1 is a "
                      r"loopback address")
        self.wait_metric('pss_deliveries_total{result="refused"} 1')
        self.assertEqual(recv.attempts, 0)  # refused before any packet

    def test_a_repeated_bounty_is_scanned_and_answered_once(self):
        recv = self.receiver()
        self.start()
        b = self.bounty(response_url=recv.url, bid=606)
        for _ in range(3):  # a sender's retries
            self.assertEqual(self.request("/", b)[0], 202)
        self.assertEqual(self.request("/clamav", b)[0], 202)
        recv.wait(1)
        self.wait_metric('pss_deliveries_total{result="ok"} 1')
        m = self.metrics()
        self.assertIn('pss_bounties_total{outcome="duplicate"} 3', m)
        self.assertIn('pss_bounties_total{outcome="accepted"} 1', m)
        self.assertIn('pss_scans_total{engine="clamav",verdict="malicious"} 1', m)
        self.assertEqual(len(recv.answers), 1)


class StagesTest(WebhookTestCase):
    """No bounty waits for another's network: failing deliveries and slow downloads hold no
    scan slot. The failing bounties expire in 600 s and the clean one is waited for at most
    PATIENCE (120 s): had it waited for them, the wait would fail."""

    def check_failing_deliveries(self, concurrency):
        failing = [self.receiver(status=500), self.receiver(status=404),
                   self.receiver(hang=True)]
        urls = [r.url for r in failing] + [
            f"http://127.0.0.1:{closed_port()}/answer", "gopher://127.0.0.1:70/x",
            "file:///tmp/answer"]
        good = self.receiver()
        self.start("--concurrency", str(concurrency))
        for i, url in enumerate(urls):
            self.assertEqual(self.request("/", self.bounty("data:,x", url, bid=100 + i))[0], 202)
        wait_until(lambda: failing[0].attempts >= 2 and failing[2].attempts >= 1,
                   what="the failing deliveries to be under way", details=self.read_log)
        self.request("/", self.bounty("data:,hello", good.url, bid=1))
        _, answer = good.wait(1)[0]
        self.assertEqual(answer["verdict"], "benign")
        # Permanent failures are tried once: 404, an unsupported scheme, a file: URL.
        self.wait_metric('pss_deliveries_total{result="refused"} 3')
        self.assertEqual(failing[1].attempts, 1)
        self.wait_log(r"bounty 104: answer NOT delivered to gopher://.*not retried")
        self.wait_metric("pss_scans_in_flight 0\n")
        self.wait_metric("pss_deliveries_in_flight 3\n")  # 500, hanging, refused: retried
        self.assertNotIn('result="expired"', self.metrics())

    def test_failing_deliveries_hold_no_scan_slot(self):
        self.check_failing_deliveries(1)

    def test_failing_deliveries_hold_no_scan_slot_with_two_slots(self):
        self.check_failing_deliveries(2)

    def check_slow_downloads(self, concurrency):
        slow = self.slow_artifacts()
        good = self.receiver()
        self.start("--concurrency", str(concurrency))
        for i in range(2):
            self.request("/", self.bounty(f"{slow.url}/{i}", good.url, bid=10 + i))
        wait_until(lambda: slow.started == 2, what="both slow downloads to start",
                   details=self.read_log)
        self.request("/", self.bounty("data:,hello", good.url, bid=1))
        headers, answer = good.wait(1)[0]
        self.assertEqual((headers["X-POLYSWARM-BOUNTY"], answer["verdict"]), ("1", "benign"))
        self.assertEqual(slow.finished, 0)  # still downloading
        self.assertIn("pss_fetches_in_flight 2", self.metrics())

    def test_slow_downloads_hold_no_scan_slot(self):
        self.check_slow_downloads(1)

    def test_slow_downloads_hold_no_scan_slot_with_two_slots(self):
        self.check_slow_downloads(2)

    def test_a_download_ends_at_the_bounty_deadline(self):
        slow = self.slow_artifacts()
        good = self.receiver()
        self.start("--concurrency", "1")
        self.request("/", self.bounty(f"{slow.url}/x", good.url, bid=12, expires_in=3))
        _, answer = good.wait(1)[0]  # late, but answered: at least one attempt
        self.assertEqual(answer["verdict"], "unknown")
        self.assertIn("timed out", answer["metadata"]["error"])


class DrainTest(WebhookTestCase):
    def test_sigterm_answers_what_was_accepted(self):
        recv = self.receiver()
        self.start("--concurrency", "1")
        for i in range(20):
            self.assertEqual(self.request("/", self.bounty("data:,x", recv.url, bid=i + 1))[0],
                             202)
        self.proc.terminate()
        self.assertEqual(self.proc.wait(PATIENCE), 0)
        self.assertEqual(len(recv.answers), 20)

    def test_sigterm_gives_deliveries_at_most_the_drain_timeout(self):
        hang = self.receiver(hang=True)
        self.start("--drain-timeout", "2")
        self.request("/", self.bounty("data:,x", hang.url, bid=31))  # never answers
        self.request("/", self.bounty("data:,x", f"http://127.0.0.1:{closed_port()}/a", bid=32))
        wait_until(lambda: hang.attempts >= 1, what="the first delivery to hang",
                   details=self.read_log)
        self.wait_log(r"bounty 32: clamav benign")
        self.proc.terminate()
        self.assertEqual(self.proc.wait(PATIENCE), 0)  # would wait 600 s for the expirations
        log = self.read_log()
        self.assertRegex(log, r"bounty 31: answer NOT delivered to .*the webhook stopped")
        self.assertRegex(log, r"bounty 32: answer NOT delivered to .*the webhook stopped")


class LargeDataTest(WebhookTestCase):
    def test_a_large_data_artifact_is_scanned_whole_and_memory_stays_near_the_body(self):
        # 20 MB whose only signature is at its very end, and the bounty's sha256 of all of it.
        payload = bytes(range(256)) * (20_000_000 // 256) + MARKER
        uri = "data:application/octet-stream;base64," + base64.b64encode(payload).decode()
        r = self.receiver()
        self.start("--body-limit", "40M")
        data = json.dumps(self.bounty(uri=uri, response_url=r.url,
                                      sha256=hashlib.sha256(payload).hexdigest())).encode()
        status, _, _ = self.request(body=data)
        self.assertEqual(status, 202)
        (_, answer), = r.wait(1)
        self.assertEqual(answer["verdict"], "malicious", answer)
        self.assertEqual(answer["metadata"]["malware_family"], "PSS.Test.Marker-7f3a")
        # Memory, not time: the body is held once, its artifact decoded straight to a file.
        # Not under AddressSanitizer, whose allocator keeps freed blocks in a quarantine.
        with open(f"/proc/{self.proc.pid}/maps") as f:
            sanitized = "libasan" in f.read()
        with open(f"/proc/{self.proc.pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) * 1024
        if not sanitized:
            self.assertLess(hwm, 2 * len(data), f"peak RSS {hwm / 2**20:.0f} MiB for a "
                                                f"{len(data) / 2**20:.0f} MiB body")

        def spooled():
            return [f for _, _, files in os.walk(self.tmp) for f in files
                    if f.startswith("artifact-")]
        wait_until(lambda: not spooled(), what="the spooled file removed", details=spooled)


class EicarHandler(http.server.BaseHTTPRequestHandler):
    served = 0

    def do_GET(self):
        EicarHandler.served += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(EICAR)))
        self.end_headers()
        self.wfile.write(EICAR)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    unittest.main(verbosity=2)
