#!/usr/bin/python3
"""Checks that icap_support's real components work on this machine (c-icap + clamd, the raw
ICAP client, c-icap-client, Squid + c-icap + an origin). Not registered in meson: it tests
the test infrastructure, not pssupervise.
Run: /usr/bin/python3 tests/integration/test_icap_components.py
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
os.environ.setdefault("PSS_BINARY", "unused")
os.environ.setdefault("PSS_SOURCE_ROOT", os.path.dirname(os.path.dirname(HERE)))
from common import EICAR, Clamd  # noqa: E402
from icap_support import (CIcap, OriginServer, Squid, c_icap_client, group_pids,  # noqa: E402
                          respmod_request, threat_names)

THREAT = "Eicar-Test-Signature.UNOFFICIAL"


def listening(pid):
    """Local addresses of the TCP/UDP sockets process `pid` listens on or is bound to."""
    out = subprocess.run(["ss", "-Hlntup"], capture_output=True, text=True).stdout
    return [line.split()[4] for line in out.splitlines() if f"pid={pid}," in line]


class CIcapTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pss-icap-")
        cls.clamd = Clamd(cls.tmp)
        cls.cicap = CIcap(cls.tmp, cls.clamd.socket)
        cls.clean = os.urandom(4 << 20)

    @classmethod
    def tearDownClass(cls):
        cls.cicap.stop()
        cls.clamd.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_options(self):
        status_line, h = self.cicap.options()
        self.assertEqual(status_line, "ICAP/1.0 200 OK")
        self.assertEqual(h["methods"], "RESPMOD, REQMOD")
        self.assertEqual(h["Preview"], "1024")
        self.assertEqual(h["Allow"], "204")
        self.assertTrue(h["ISTag"].startswith('"CI0001-'), h["ISTag"])
        self.assertEqual(self.cicap.options("nosuch")[0], "ICAP/1.0 404 Service not found")

    def test_eicar(self):
        for preview in (None, 0, 1024, 10):
            with self.subTest(preview=preview):
                r = self.cicap.respmod(EICAR, preview=preview)
                self.assertEqual(r.status, 200, r.raw)
                self.assertIn(f"Threat={THREAT};", r.headers["X-Infection-Found"])
                self.assertEqual(r.headers["X-Violations-Found"], f"1\n-\n{THREAT}\n0\n0")
                self.assertEqual(threat_names(r.headers), [THREAT])
                self.assertEqual(r.http_status, 403)
                self.assertIn(b"VIRUS FOUND", r.http_body)
                self.assertEqual(r.continued, preview is not None and preview < len(EICAR))

    def test_clean(self):
        r = self.cicap.respmod(self.clean, preview=1024)
        self.assertEqual((r.status, r.continued, r.http), (204, True, None), r.raw[:500])
        r = self.cicap.respmod(b"small and clean", preview=1024)  # ieof in the preview
        self.assertEqual((r.status, r.continued), (204, False))
        r = self.cicap.respmod(self.clean, allow204=False)  # the body must come back
        self.assertEqual(r.status, 200)
        self.assertEqual(r.http_status, 200)
        self.assertEqual(hashlib.sha256(r.http_body).digest(),
                         hashlib.sha256(self.clean).digest())
        r = self.cicap.respmod(None)  # null-body
        self.assertEqual(r.status, 204, r.raw)

    def test_keep_alive_and_streamed_service(self):
        with self.cicap.client.connect() as c:
            self.assertEqual(c.respmod(EICAR, preview=1024).status, 200)
            self.assertEqual(c.respmod(b"clean", preview=1024).status, 204)
            self.assertEqual(c.options()[0], "ICAP/1.0 200 OK")
        r = self.cicap.respmod(EICAR, service=CIcap.STREAM_SERVICE, preview=1024)
        self.assertEqual((r.status, threat_names(r.headers)), (200, [THREAT]))

    def test_raw(self):
        out = self.cicap.raw(b"HELLO\r\n\r\n", until=b"\r\n\r\n")
        self.assertRegex(out, rb"^ICAP/1.0 [45]\d\d ")
        good = respmod_request(self.cicap.url, EICAR)
        out = self.cicap.raw(good, until=b"0\r\n\r\n")
        self.assertIn(b"X-Infection-Found", out)
        cut = self.cicap.raw(good[:60], half_close=True)  # the server sees EOF mid-head
        self.assertNotIn(b"X-Infection-Found", cut)

    def test_c_icap_client(self):
        eicar = os.path.join(self.tmp, "eicar.com")
        clean = os.path.join(self.tmp, "clean.bin")
        with open(eicar, "wb") as f:
            f.write(EICAR)
        with open(clean, "wb") as f:
            f.write(self.clean)
        o = c_icap_client(self.cicap.url)
        self.assertEqual((o.returncode, o.status), (0, 200))
        self.assertEqual(o.options["Preview"], "1024")
        self.assertEqual(o.headers["Methods"], "RESPMOD, REQMOD")
        r = c_icap_client(("127.0.0.1", self.cicap.port, "avscan"), eicar)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["X-Violations-Found"], f"1\n-\n{THREAT}\n0\n0")
        self.assertEqual(threat_names(r.headers), [THREAT])
        self.assertEqual(r.http_status_line, "HTTP/1.0 403 Forbidden")
        self.assertIn(b"VIRUS FOUND", r.body)
        c = c_icap_client(self.cicap.url, clean)
        self.assertTrue(c.unmodified)
        self.assertIsNone(c.body)
        e = c_icap_client(self.cicap.url, clean, allow204=False)
        self.assertEqual(e.status, 200)
        self.assertEqual(e.body, self.clean)
        q = c_icap_client(self.cicap.url, eicar, "REQMOD", http_method="POST")
        self.assertEqual((q.status, threat_names(q.headers)), (200, [THREAT]))
        n = c_icap_client(self.cicap.url_for("nosuch"))
        self.assertEqual((n.returncode, n.status), (0, 404))
        d = c_icap_client(("127.0.0.1", 1, "avscan"), eicar)
        self.assertEqual((d.returncode, d.connected, d.status), (255, False, None))

    def test_loopback_only(self):
        addrs = listening(self.cicap.proc.pid)
        self.assertTrue(addrs)
        self.assertTrue(all(a.startswith("127.0.0.1:") for a in addrs), addrs)


class SquidTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pss-squid-")
        cls.clamd = Clamd(cls.tmp)
        cls.cicap = CIcap(cls.tmp, cls.clamd.socket)
        cls.origin = OriginServer(cls.tmp)
        cls.clean = os.urandom(4 << 20)
        cls.origin.add("eicar.com", EICAR)
        cls.origin.add("clean.bin", cls.clean)
        cls.origin.add("small.bin", cls.clean[:60000])
        cls.origin.add("over64k.bin", cls.clean[:70000])
        cls.origin.add("late-eicar.bin", cls.clean[:3000000] + EICAR)

    @classmethod
    def tearDownClass(cls):
        cls.origin.stop()
        cls.cicap.stop()
        cls.clamd.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def squid(self, service, **kw):
        s = Squid(self.tmp, self.cicap.url_for(service), name=f"squid-{service}", **kw)
        self.addCleanup(s.stop)
        return s

    def test_simple_mode(self):
        s = self.squid(CIcap.SERVICE)
        r = s.get(self.origin.url("eicar.com"))
        self.assertEqual(r.status, 403)
        self.assertIn(THREAT.encode(), r.body)
        r = s.get(self.origin.url("small.bin"))
        self.assertEqual((r.status, r.body == self.clean[:60000]), (200, True))
        self.assertEqual(self.origin.hits("small.bin"), 1)
        addrs = listening(s.proc.pid)
        self.assertTrue(addrs)
        self.assertTrue(all(a.startswith("127.0.0.1:") for a in addrs), addrs)

    def test_simple_mode_stalls_over_64k(self):
        # Squid bug 5352: c-icap waits for the whole body, Squid stops after 65,535 bytes;
        # the ICAP I/O timeout ends it.
        s = self.squid(CIcap.SERVICE, extra_config=["icap_io_timeout 3 seconds"])
        r = s.get(self.origin.url("over64k.bin"))
        self.assertEqual(r.status, 500)
        self.assertIn(b"ERR_ICAP_FAILURE", r.body)

    def test_streamed_mode(self):
        s = self.squid(CIcap.STREAM_SERVICE)
        r = s.get(self.origin.url("clean.bin"))
        self.assertEqual(r.status, 200)
        self.assertTrue(r.complete)
        self.assertEqual(hashlib.sha256(r.body).digest(), hashlib.sha256(self.clean).digest())
        r = s.get(self.origin.url("eicar.com"))
        self.assertEqual(r.status, 403)
        r = s.get(self.origin.url("late-eicar.bin"))  # partly sent before the scan ended
        self.assertEqual((r.status, r.complete), (200, False))
        self.assertLess(len(r.body), 3000000)

    def test_stop(self):
        s = self.squid(CIcap.SERVICE)
        pid = s.proc.pid
        s.stop()
        s.stop()
        self.assertEqual(group_pids(pid), [])
        self.assertEqual([f for f in os.listdir("/dev/shm") if f.startswith(s.service_name)], [])


class OriginTest(unittest.TestCase):
    def test_keep_alive_and_hits(self):
        import http.client
        tmp = tempfile.mkdtemp(prefix="pss-origin-")
        self.addCleanup(shutil.rmtree, tmp, True)
        o = OriginServer(tmp)
        self.addCleanup(o.stop)
        o.add("a/b.txt", b"hello")
        c = http.client.HTTPConnection("127.0.0.1", o.port)
        for _ in range(2):
            c.request("GET", "/a/b.txt")
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (200, b"hello"))
        c.close()
        self.assertEqual(o.hits("/a/b.txt"), 2)
        self.assertEqual(o.hits("a/b.txt"), 2)
        o.stop()
        o.stop()


class StopTest(unittest.TestCase):
    def test_cicap_stop_idempotent_and_complete(self):
        tmp = tempfile.mkdtemp(prefix="pss-icap-stop-")
        self.addCleanup(shutil.rmtree, tmp, True)
        clamd = Clamd(tmp)
        self.addCleanup(clamd.stop)
        c = CIcap(tmp, clamd.socket)
        self.assertTrue(c.shm, "c-icap maps its kids queue in /dev/shm")
        self.assertTrue(c.locks, "c-icap holds its accept lock in /tmp")
        pid = c.proc.pid
        self.assertGreaterEqual(len(group_pids(pid)), 2)  # the main process and a child
        c.stop()
        c.stop()
        self.assertEqual(group_pids(pid), [])
        self.assertFalse([p for p in c.shm + c.locks if os.path.exists(p)])
        with open(c.server_log) as f:
            self.assertIn("term signal", f.read())


if __name__ == "__main__":
    unittest.main()
