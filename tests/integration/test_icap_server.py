#!/usr/bin/python3
"""`pssupervise icap` with real clients only: c-icap-client against our server with our own
clamd (EICAR, a clean file, OPTIONS), Squid as a forward proxy in front of a loopback origin
(EICAR blocked with 403, a clean 4 MiB file byte-identical, 200 requests over a few kept-alive
ICAP connections; REQMOD: an infected upload blocked before the origin, clean ones delivered
byte for byte), --backend celery with a real Redis and a `pssupervise worker`, malformed
input (wrong Encapsulated offsets, lying chunk sizes, a preview longer than announced, a
100 KB request line, a client that stops mid-body, 10,000 idle connections) that never
crashes it, two engines in one answer, SIGHUP changing the ISTag, --on-unknown,
--body-limit, --backend process, the result cache (a repeated body not scanned again, one
changed byte scanned), and a SIGTERM drain."""
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (BINARY, EICAR, PATIENCE, SANITIZED, SOURCE_ROOT, PssTestCase,  # noqa: E402
                    fake_engine, pid_alive, runs_of, wait_until)
from icap_support import (IcapClient, OriginServer, Squid, c_icap_client,  # noqa: E402
                          respmod_request, threat_names)
from test_celery import CeleryTestCase  # noqa: E402

YARA_RULES = os.path.join(SOURCE_ROOT, "engines", "yara", "rules")


class IcapServerCase(PssTestCase):
    def setUp(self):
        super().setUp()
        self.proc = None
        self.cleanups_done = False

    def tearDown(self):
        self.stop_server()
        super().tearDown()

    def stop_server(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(PATIENCE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(PATIENCE)
        self.assertNoClamdLeft()

    def start(self, *args, engine="clamav", env=None):
        """Starts `pssupervise icap` on free ports (ICAP and /metrics) and waits for its
        readiness line."""
        self.log_path = os.path.join(self.tmp, "icap.log")
        e = dict(self.env)
        e.update(env or {})
        cmd = [BINARY, "--log-level", "info", "--engine", engine, "icap", "-p", "0",
               "--metrics-port", "0", *args]
        with open(self.log_path, "w") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=e,
                                         cwd=self.tmp)

        def ready():
            if self.proc.poll() is not None:
                self.fail(f"pssupervise icap exited with {self.proc.returncode}\n{self.log()}")
            return re.search(r"pssupervise icap: listening on 127\.0\.0\.1:(\d+)", self.log())

        m = wait_until(ready, what="pssupervise icap to listen", details=self.log)
        self.port = int(m.group(1))
        self.metrics_port = int(
            re.search(r"pssupervise icap: metrics on 127\.0\.0\.1:(\d+)", self.log()).group(1))
        self.url = f"icap://127.0.0.1:{self.port}/avscan"
        self.client = IcapClient("127.0.0.1", self.port, "avscan")

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=PATIENCE) as r:
            return r.read().decode()

    def metric(self, name, labels=""):
        """A sample's value from /metrics (0 if absent)."""
        m = re.search(rf"^{re.escape(name + labels)} (\S+)$", self.metrics(), re.M)
        return float(m.group(1)) if m else 0.0

    def assertAnswers(self):
        """The server is alive and answers an OPTIONS."""
        self.assertIsNone(self.proc.poll(), self.log())
        status_line, headers = self.client.options()
        self.assertEqual(status_line, "ICAP/1.0 200 OK")
        return headers


class CIcapClientTest(IcapServerCase):
    def test_eicar_clean_and_options(self):
        self.start()
        eicar = self.write("eicar.com", EICAR)
        clean = self.write("clean.bin", os.urandom(100000))

        opt = c_icap_client(self.url)
        self.assertEqual(opt.status_line, "ICAP/1.0 200 OK", opt.stderr)
        h = opt.headers
        self.assertEqual(h["Methods"], "RESPMOD, REQMOD")
        self.assertRegex(h["ISTag"], r'^"PSS-[0-9a-f]{20}"$')
        self.assertLessEqual(len(h["ISTag"]), 32)
        self.assertEqual(h["Preview"], "1024")
        self.assertEqual(h["Transfer-Preview"], "*")
        self.assertEqual(h["Allow"], "204")
        self.assertEqual(h["Max-Connections"], "1000")
        self.assertEqual(h["Options-TTL"], "3600")
        self.assertEqual(h["Encapsulated"], "null-body=0")
        self.assertIn("clamav", h["Service"])
        self.assertEqual(opt.options.get("Preview"), "1024")

        r = c_icap_client(self.url, eicar)
        self.assertEqual(r.status, 200, r.stderr)
        self.assertEqual(r.headers["X-Infection-Found"],
                         "Type=0; Resolution=2; Threat=Eicar-Test-Signature;")
        self.assertEqual(r.headers["X-Virus-ID"], "Eicar-Test-Signature")
        self.assertEqual(r.headers["X-Violations-Found"].split("\n"),
                         ["1", "-", "Eicar-Test-Signature", "0", "0"])
        self.assertEqual(threat_names(r.headers), ["Eicar-Test-Signature"])
        self.assertEqual(r.headers["ISTag"], h["ISTag"])
        self.assertRegex(r.http_status_line, r"^HTTP/1\.[01] 403 Forbidden$")
        self.assertIn(b"Eicar-Test-Signature", r.body)

        r = c_icap_client(self.url, clean)
        self.assertEqual(r.status, 204, r.stderr)
        self.assertNotIn("X-Infection-Found", r.headers)
        # Without Allow: 204, the message comes back unmodified, byte for byte.
        r = c_icap_client(self.url, clean, allow204=False)
        self.assertEqual(r.status, 200, r.stderr)
        with open(clean, "rb") as f:
            self.assertEqual(r.body, f.read())
        # REQMOD to one engine's service.
        r = c_icap_client(f"icap://127.0.0.1:{self.port}/clamav", eicar, method="REQMOD",
                          http_method="POST")
        self.assertEqual(r.status, 200, r.stderr)
        self.assertEqual(threat_names(r.headers), ["Eicar-Test-Signature"])
        # Any other service path.
        status_line, _ = self.client.options("nope")
        self.assertEqual(status_line, "ICAP/1.0 404 ICAP Service Not Found")
        self.assertEqual(self.metric("pss_scans_total", '{engine="clamav",verdict="malicious"}'), 2)
        self.assertAnswers()


class SquidTest(IcapServerCase):
    def test_squid_blocks_eicar_passes_clean_bytes_and_keeps_connections(self):
        self.start()
        origin = OriginServer(self.tmp)
        self.addCleanup(origin.stop)
        squid = Squid(self.tmp, self.url)
        self.addCleanup(squid.stop)

        r = squid.get(origin.add("eicar.com", EICAR))
        self.assertEqual(r.status, 403, squid.log())
        self.assertIn(b"Eicar-Test-Signature", r.body)

        big = os.urandom(4 << 20)
        r = squid.get(origin.add("big.bin", big))
        self.assertEqual(r.status, 200, self.log())
        self.assertTrue(r.complete, f"{len(r.body)} bytes\n{self.log()[-3000:]}\n{squid.log()}")
        self.assertEqual(r.body, big)

        # A large body that turns out infected: Squid (no Allow: 204 beyond 64 KiB) got the
        # head before the verdict (and a byte of the body per 64 KiB); the transfer is cut.
        bad = os.urandom(200000) + EICAR
        r = squid.get(origin.add("late.bin", bad))
        self.assertFalse(r.status == 200 and r.complete and r.body == bad)
        self.assertNotIn(EICAR, r.body)
        wait_until(lambda: "connection closed after the head" in self.log(), details=self.log)

        before = self.metric("pss_icap_connections_total")
        small = origin.add("page.html", b"<html>hello</html>")
        for _ in range(200):
            r = squid.get(small)
            self.assertEqual((r.status, r.body), (200, b"<html>hello</html>"))
        self.assertEqual(origin.hits("page.html"), 200)
        self.assertGreaterEqual(self.metric("pss_icap_requests_total",
                                            '{method="RESPMOD",status="204"}'), 200)
        # Squid kept its ICAP connections alive: a few for 200 requests.
        self.assertLessEqual(self.metric("pss_icap_connections_total") - before, 10)
        self.assertAnswers()

    def test_squid_reqmod_blocks_an_infected_upload_and_passes_a_clean_one(self):
        self.start()
        origin = OriginServer(self.tmp)
        self.addCleanup(origin.stop)
        squid = Squid(self.tmp, self.url, method="reqmod_precache")
        self.addCleanup(squid.stop)

        # EICAR in a POST body: Squid answers with our 403 page; the origin sees nothing.
        bad = (b"--b\r\nContent-Disposition: form-data; name=f; filename=e.com\r\n\r\n" + EICAR
               + b"\r\n--b--\r\n")
        r = squid.request("POST", origin.url("upload/eicar"), bad,
                          headers={"Content-Type": "multipart/form-data; boundary=b"})
        self.assertEqual(r.status, 403, squid.log())
        self.assertIn(b"Eicar-Test-Signature", r.body)
        self.assertIn(b"clamav", r.body)
        # A clean body of each size: under the preview, under Squid's 64 KiB copy (Allow: 204),
        # and far over it (the answer begun before the verdict): byte for byte at the origin.
        clean = {"small": b"a=1&b=2", "medium": os.urandom(50000), "large": os.urandom(3 << 20)}
        for name, body in clean.items():
            r = squid.request("POST", origin.url(f"upload/{name}"), body,
                              headers={"Content-Type": "application/octet-stream"})
            self.assertEqual((r.status, r.body), (201, b"stored %d bytes\n" % len(body)),
                             f"{name}\n{squid.log()}")
            self.assertEqual(origin.uploads(f"upload/{name}"), [body], name)
        # PUT too.
        r = squid.request("PUT", origin.url("upload/put-eicar"), EICAR)
        self.assertEqual(r.status, 403, squid.log())
        r = squid.request("PUT", origin.url("upload/put-clean"), b"just text\n")
        self.assertEqual(r.status, 201, squid.log())
        self.assertEqual(origin.uploads("upload/put-clean"), [b"just text\n"])

        # The infected uploads never reached the origin, not even their request line.
        for path in ("upload/eicar", "upload/put-eicar"):
            self.assertEqual(origin.hits(path), 0, path)
            self.assertEqual(origin.uploads(path), [], path)
        # An infected upload over 64 KiB: the answer (the request unmodified) had begun before
        # the verdict (for Squid 5.7, bug 5352), so the ICAP connection is cut instead. Squid
        # answers with its own error page, not ours, and the origin gets the request's head and
        # a few bytes of its body (one per 64 KiB), never the body whole nor EICAR.
        r = squid.request("POST", origin.url("upload/late"), os.urandom(1 << 20) + EICAR)
        self.assertNotEqual(r.status // 100, 2, squid.log())
        wait_until(lambda: "connection closed after the head" in self.log(), details=self.log)
        wait_until(lambda: origin.cut("upload/late") or origin.uploads("upload/late"),
                   what="the origin to see the upload end")
        self.assertEqual(origin.uploads("upload/late"), [])
        self.assertNotIn(EICAR, b"".join(origin.cut("upload/late")))
        self.assertEqual(self.metric("pss_scans_total", '{engine="clamav",verdict="malicious"}'), 3)
        self.assertNotIn('method="RESPMOD"', self.metrics())  # REQMOD only: uploads
        self.assertAnswers()


class CeleryBackendTest(IcapServerCase, CeleryTestCase):
    """--backend celery: the server scans nothing itself; a `pssupervise worker` on the same
    Redis does. The body travels in the task (a data: URI), so the worker needs no access to
    the server's files (no --allow-file-prefix, no shared TMPDIR)."""

    def test_worker_scans_the_bodies_over_redis(self):
        # The worker's own clamd, in its own runtime dir (the server's must stay empty).
        worker_runtime = os.path.join(self.tmp, "worker-runtime")
        os.mkdir(worker_runtime, 0o700)
        worker_tmp = os.path.join(self.tmp, "worker-tmp")
        os.mkdir(worker_tmp)
        worker = self.start_worker("--concurrency", "2", files=(),
                                   env={"CLAMAV_RUNTIME_DIR": worker_runtime,
                                        "TMPDIR": worker_tmp})
        self.own_worker = (worker, worker_runtime)
        self.start("--backend", "celery", "--broker", self.redis.url,
                   "--result-backend", self.redis.url)
        self.assertRegex(self.log(), r"listening on 127\.0\.0\.1:\d+ \(celery backend")

        eicar = self.write("eicar.com", EICAR)
        clean = self.write("clean.bin", os.urandom(100000))
        r = c_icap_client(self.url, eicar)
        self.assertEqual(r.status, 200, r.stderr + self.read_log(worker))
        self.assertEqual(r.headers["X-Infection-Found"],
                         "Type=0; Resolution=2; Threat=Eicar-Test-Signature;")
        self.assertRegex(r.http_status_line, r"^HTTP/1\.[01] 403 Forbidden$")
        self.assertIn(b"Eicar-Test-Signature", r.body)
        r = c_icap_client(self.url, clean)
        self.assertEqual(r.status, 204, r.stderr + self.read_log(worker))
        self.assertNotIn("X-Scan-Error", r.headers)
        # Our own client: EICAR late in a larger body, sent after a preview and 100 Continue.
        late = os.urandom(300000) + EICAR
        r = self.client.respmod(late, preview=1024, allow204=True)
        self.assertEqual(r.http_status, 403)
        self.assertEqual(threat_names(r.headers), ["Eicar-Test-Signature"])
        r = self.client.respmod(b"nothing to see here\n", allow204=True)
        self.assertEqual(r.status, 204)

        # The worker made every verdict: four tasks, and no clamd beside the server.
        self.assertEqual(self.metric("pss_scans_total", '{engine="clamav",verdict="malicious"}'), 2)
        self.assertEqual(self.metric("pss_scans_total", '{engine="clamav",verdict="benign"}'), 2)
        self.assertFalse(os.path.exists(os.path.join(self.runtime, "clamd.pid")))
        self.assertEqual(len(re.findall(r"task \S+ \(pssupervise\.analyze\) received",
                                        self.read_log(worker))), 4, self.read_log(worker))
        self.assertAnswers()
        self.stop_worker(*self.own_worker)

    def tearDown(self):
        try:
            if getattr(self, "own_worker", None):
                self.stop_worker(*self.own_worker)
        finally:
            super().tearDown()

    def stop_worker(self, worker, runtime):
        """SIGTERM: the worker drains and stops its clamd (checked by its pid file)."""
        if worker.poll() is None:
            worker.terminate()
            worker.wait(PATIENCE)
        pidfile = os.path.join(runtime, "clamd.pid")
        if os.path.exists(pidfile):
            with open(pidfile) as f:
                pid = int(f.read().strip() or 0)
            if pid and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
                self.fail(f"the worker's clamd (pid {pid}) outlived the worker")


class BadInputTest(IcapServerCase):
    def answer_of(self, raw):
        """The status of the first ICAP answer in `raw` (bytes), or None (closed silently)."""
        m = re.match(rb"ICAP/1\.0 (\d{3}) ", raw)
        return int(m.group(1)) if m else None

    def test_malformed_requests_get_4xx_or_a_close_and_never_a_crash(self):
        self.start("--read-timeout", "2")
        body = os.urandom(5000) + EICAR
        good = respmod_request(self.url, body)

        # Wrong Encapsulated offsets: a head cut short, a head that runs into the body.
        for delta in (-7, 9):
            m = re.search(rb"res-body=(\d+)", good)
            bad = good.replace(m.group(0), b"res-body=%d" % (int(m.group(1)) + delta))
            raw = self.client.raw(bad, timeout=PATIENCE)
            self.assertEqual(self.answer_of(raw), 400, raw)
            self.assertIn(b"Encapsulated", raw)
        # A chunk whose data is longer than its size says.
        m = re.search(rb"\r\n\r\n([0-9a-f]+)\r\n", good[good.index(b"res-body"):])
        lying = good.replace(b"\r\n%s\r\n" % m.group(1), b"\r\n10\r\n", 1)
        raw = self.client.raw(lying, timeout=PATIENCE)
        self.assertEqual(self.answer_of(raw), 400, raw)
        # A preview longer than its Preview field announces.
        longer = good.replace(b"Allow: 204\r\n", b"Allow: 204\r\nPreview: 100\r\n", 1)
        raw = self.client.raw(longer, timeout=PATIENCE)
        self.assertEqual(self.answer_of(raw), 400, raw)
        self.assertIn(b"preview", raw)
        # A 100 KB request line.
        raw = self.client.raw(b"RESPMOD icap://127.0.0.1/" + b"a" * 100000 + b" ICAP/1.0\r\n",
                              timeout=PATIENCE)
        self.assertIn(self.answer_of(raw), (413, None), raw)
        # Another ICAP version, another method.
        raw = self.client.raw(b"OPTIONS icap://127.0.0.1/avscan ICAP/2.0\r\n\r\n", timeout=PATIENCE)
        self.assertEqual(self.answer_of(raw), 505, raw)
        raw = self.client.raw(b"PUT icap://127.0.0.1/avscan ICAP/1.0\r\n\r\n", timeout=PATIENCE)
        self.assertEqual(self.answer_of(raw), 501, raw)
        # A client that stops mid-body and closes its side: 400, or closed.
        raw = self.client.raw(good[:len(good) // 2], timeout=PATIENCE, half_close=True)
        self.assertIn(self.answer_of(raw), (400, None), raw)
        # A client that stops mid-body and waits: closed after --read-timeout.
        with self.client.connect() as c:
            c.send(good[:len(good) // 2])
            self.assertTrue(c.peer_closed())
        # Still answering, and the right verdict for the same request sent whole.
        self.assertAnswers()
        r = self.client.respmod(body)
        self.assertEqual(threat_names(r.headers), ["Eicar-Test-Signature"])
        self.assertIn("request line is longer than 8192", self.log())

    def test_ten_thousand_idle_connections(self):
        self.start("--max-connections", "500")
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        n = 10000
        if hard < n + 200:
            self.skipTest(f"RLIMIT_NOFILE {hard} is below {n + 200}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n + 200), hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        socks = []
        try:
            for _ in range(n):
                socks.append(socket.create_connection(("127.0.0.1", self.port), timeout=PATIENCE))
            # Every connection accepted: the oldest idle ones were closed to make room.
            wait_until(lambda: self.metric("pss_icap_connections_total") >= n,
                       details=self.metrics)
            self.assertLessEqual(self.metric("pss_icap_connections"), 500)
            self.assertGreaterEqual(
                self.metric("pss_icap_connections_turned_away_total", '{how="evicted"}'),
                n - 500)
            # A normal request is still answered.
            r = c_icap_client(self.url, self.write("eicar.com", EICAR))
            self.assertEqual(threat_names(r.headers), ["Eicar-Test-Signature"], r.stderr)
            with open(f"/proc/{self.proc.pid}/status") as f:
                rss_kb = int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))
            limit_mb = 1024 if SANITIZED else 256
            self.assertLess(rss_kb, limit_mb * 1024, f"VmRSS {rss_kb} kB")
        finally:
            for s in socks:
                s.close()
        self.assertAnswers()

    def test_body_limit_answered_by_policy_and_the_connection_kept(self):
        self.start("--body-limit", "64K")
        big = os.urandom(300000)
        # Its Content-Length is over the limit: answered at the preview, nothing more sent.
        r = self.client.respmod(big, preview=1024, allow204=True)
        self.assertEqual(r.status, 200)
        self.assertFalse(r.continued)
        self.assertEqual(r.http_status, 403)
        self.assertIn("--body-limit", r.headers["X-Scan-Error"])
        # No Content-Length, no preview: read to its end and dropped; the connection goes on.
        with self.client.connect() as c:
            r = c.respmod(big, allow204=True, http_headers=("Transfer-Encoding: chunked",))
            self.assertEqual(r.http_status, 403)
            self.assertIn("--body-limit", r.headers["X-Scan-Error"])
            r = c.respmod(EICAR)
            self.assertEqual(threat_names(r.headers), ["Eicar-Test-Signature"])
        self.assertAnswers()


class EnginesTest(IcapServerCase):
    def yara_env(self, rules=YARA_RULES):
        return {"YARA_DATA_HOME": rules, "YARA_CACHE_HOME": os.path.join(self.tmp, "yara-cache")}

    def test_two_engines_one_answer_with_every_name(self):
        self.start(engine="clamav,yara", env=self.yara_env())
        r = c_icap_client(self.url, self.write("eicar.com", EICAR))
        self.assertEqual(r.status, 200, r.stderr)
        self.assertEqual(threat_names(r.headers), ["EICAR_Test_File", "Eicar-Test-Signature"])
        self.assertEqual(len(r.headers.get_all("X-Infection-Found")), 2)
        self.assertTrue(r.headers["X-Violations-Found"].startswith("2\n"))
        self.assertIn(b"clamav", r.body)
        self.assertIn(b"yara", r.body)
        # One engine's service answers for that engine alone.
        r = c_icap_client(f"icap://127.0.0.1:{self.port}/yara", self.write("e2.com", EICAR))
        self.assertEqual(threat_names(r.headers), ["EICAR_Test_File"])
        r = c_icap_client(self.url, self.write("clean.txt", b"nothing to see"))
        self.assertEqual(r.status, 204, r.stderr)

    def test_sighup_changes_the_istag_with_the_definitions(self):
        rules = os.path.join(self.tmp, "rules")
        shutil.copytree(YARA_RULES, rules)
        self.start(engine="yara", env=self.yara_env(rules))
        sample = b"PSS-NEW-RULE here"
        _, h = self.client.options()
        first = h["ISTag"]
        self.assertEqual(self.client.respmod(sample).status, 204)
        self.proc.send_signal(signal.SIGHUP)  # nothing changed: the same ISTag
        wait_until(lambda: "SIGHUP: reloading" in self.log(), details=self.log)
        wait_until(lambda: self.metric("pss_engine_updates_total",
                                       '{engine="yara",result="ok"}') >= 1, details=self.log)
        self.assertEqual(self.client.options()[1]["ISTag"], first)
        with open(os.path.join(rules, "pssupervise.yar"), "a") as f:
            f.write('\nrule PSS_New_Rule { strings: $a = "PSS-NEW-RULE" condition: $a }\n')
        self.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: self.client.options()[1]["ISTag"] != first, details=self.log)
        r = self.client.respmod(sample)
        self.assertEqual(r.headers["ISTag"], self.client.options()[1]["ISTag"])
        self.assertEqual(threat_names(r.headers), ["PSS_New_Rule"])

    def test_on_unknown_block_and_allow(self):
        engines = os.path.join(self.tmp, "engines")
        fake_engine(engines, name="fake")
        crash = self.write("crash.bin", b"CRASH now")
        env = {"PSS_ENGINES_DIR": engines}
        self.start(engine="fake", env=env)
        r = c_icap_client(self.url, crash)
        self.assertEqual(r.status, 200, r.stderr)
        self.assertRegex(r.http_status_line, r" 403 Forbidden$")
        self.assertIn("fake:", r.headers["X-Scan-Error"])
        self.assertNotIn("X-Infection-Found", r.headers)
        self.assertIn(b"could not be scanned", r.body)
        self.stop_server()
        self.start("--on-unknown", "allow", engine="fake", env=env)
        r = c_icap_client(self.url, crash)
        self.assertEqual(r.status, 204, r.stderr)
        self.assertIn("fake:", r.headers["X-Scan-Error"])
        r = c_icap_client(self.url, self.write("e.com", EICAR))
        self.assertEqual(threat_names(r.headers), ["Eicar.Fake"])

    def test_the_result_cache_answers_the_same_bytes_and_only_them(self):
        # The server hashes a body as it arrives (preview, then the rest): a repeat is answered
        # from the cache without a scan; one byte changed at the end is scanned again.
        engines = os.path.join(self.tmp, "engines")
        runs = os.path.join(self.tmp, "runs.txt")
        defs = self.write("fake.defs", b"version 1")  # a definitions version: cacheable
        fake_engine(engines, name="fake", runs=runs, definitions={"files": [defs]})
        self.start(engine="fake", env={"PSS_ENGINES_DIR": engines,
                                       "PSS_CACHE": os.path.join(self.tmp, "cache.sqlite")})
        body = os.urandom(300 * 1024)
        tail = body[:-1] + bytes([body[-1] ^ 1])
        infected = EICAR + os.urandom(5000)
        for preview in (None, 1024):
            self.assertEqual(self.client.respmod(body, preview=preview).status, 204)
        self.assertEqual(len(runs_of(runs)), 1)
        self.assertEqual(self.metric("pss_cache_lookups_total", '{engine="fake",result="hit"}'), 1)
        self.assertEqual(self.client.respmod(tail, preview=1024).status, 204)
        self.assertEqual(len(runs_of(runs)), 2)
        for _ in range(2):
            r = self.client.respmod(infected, preview=1024)
            self.assertEqual(threat_names(r.headers), ["Eicar.Fake"])
        self.assertEqual(len(runs_of(runs)), 3)
        self.assertEqual(self.metric("pss_cache_lookups_total", '{engine="fake",result="hit"}'), 2)

    def test_process_backend_scans_in_its_workers(self):
        # --backend process: a worker process scans the spooled body by its path.
        engines = os.path.join(self.tmp, "engines")
        runs = os.path.join(self.tmp, "runs.txt")
        fake_engine(engines, name="fake", runs=runs)
        self.start("--backend", "process", "--concurrency", "2", engine="fake",
                   env={"PSS_ENGINES_DIR": engines})
        r = self.client.respmod(EICAR + os.urandom(3000), preview=1024)
        self.assertEqual(threat_names(r.headers), ["Eicar.Fake"])
        clean = os.urandom(200 * 1024)
        r = self.client.respmod(clean, preview=1024, allow204=False)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.http_body, clean)
        self.assertEqual(self.client.respmod(b"tiny", preview=1024).status, 204)
        scanned = runs_of(runs)
        self.assertEqual(len(scanned), 3)
        # The workers scanned the server's spool files, which go once answered (just after
        # the answer is sent).
        self.assertTrue(all(os.path.basename(p).startswith("icap-body-") for p in scanned),
                        scanned)
        wait_until(lambda: not any(os.path.exists(p) for p in scanned),
                   what="the spool files to be removed",
                   details=lambda: str([p for p in scanned if os.path.exists(p)]))
        self.assertAnswers()

    def test_sigterm_answers_the_requests_in_flight(self):
        engines = os.path.join(self.tmp, "engines")
        runs = os.path.join(self.tmp, "runs.log")
        go = os.path.join(self.tmp, "go")
        fake_engine(engines, name="fake", runs=runs)
        self.start(engine="fake", env={"PSS_ENGINES_DIR": engines, "FAKE_UNTIL": go})
        answers = []
        t = threading.Thread(target=lambda: answers.append(self.client.respmod(b"clean bytes")))
        t.start()
        wait_until(lambda: runs_of(runs), what="the scan to start")
        self.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: "draining: 1 connections" in self.log(), details=self.log)
        with socket.socket() as s:  # no new connections meanwhile
            self.assertNotEqual(s.connect_ex(("127.0.0.1", self.port)), 0)
        open(go, "w").close()
        t.join(PATIENCE)
        self.assertEqual([a.status for a in answers], [204])
        self.assertEqual(self.proc.wait(PATIENCE), 0, self.log())
        self.assertFalse(pid_alive(self.proc.pid))


if __name__ == "__main__":
    unittest.main()
