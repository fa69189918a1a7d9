#!/usr/bin/python3
"""Windows engines under real Wine: Wine's own find.exe, and the testvendor scanner built
with mingw-w64. The prefix is shared by the tests of a run (PSS_WINE_STATE), created once."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (BINARY, EICAR, MARKER, PATIENCE, SAMPLES, PssTestCase,  # noqa: E402
                    live_pids, wait_until)

WINE_STATE = os.environ.get("PSS_WINE_STATE", "/tmp/pss-wine-state")
TESTVENDOR = os.environ.get("PSS_TESTVENDOR", "")


def wine_processes(prefix):
    """Live processes that belong to a Wine prefix (their environment names it)."""
    return live_pids("environ", f"WINEPREFIX={prefix}\0".encode())


class WineTestCase(PssTestCase):
    engine = None

    def setUp(self):
        super().setUp()
        self.state = os.path.join(WINE_STATE, self.engine)
        os.makedirs(self.state, exist_ok=True)
        self.env[f"{self.engine.upper()}_STATE_HOME"] = self.state
        self.prefix = os.path.join(self.state, "wineprefix")

    def assertNoWineLeft(self):
        wait_until(lambda: not wine_processes(self.prefix),
                   what=f"no Wine process left for {self.prefix}",
                   details=lambda: f"left: {wine_processes(self.prefix)}", interval=0.1)


class WinfindTest(WineTestCase):
    engine = "winfind"

    def test_eicar_and_clean(self):
        r = self.pss("--engine", "winfind", "analyze", "--format", "json", SAMPLES, timeout=600)
        self.assertEqual(r.code, 1, r)
        got = {os.path.basename(l["input"]): l["analysis"] for l in r.json_lines()}
        self.assertEqual(got["eicar.com"]["result"], "malicious")
        self.assertEqual(got["eicar.com"]["result_name"], "EICAR-Test-File")
        self.assertEqual(got["hello.txt"]["result"], "benign")
        self.assertTrue(got["hello.txt"]["analysis_engine_version"].startswith("wine-"))
        self.assertNoWineLeft()

    def test_cp1252_output_reaches_the_analysis_as_utf8(self):
        path = self.write("f\u00fcr/eicar \u2013 copy.com", EICAR)
        r = self.pss("--engine", "winfind", "analyze", "--format", "json", path, timeout=600)
        a = r.json_lines()[0]["analysis"]
        self.assertEqual(a["result"], "malicious", r)
        # find.exe upper-cases ASCII only and prints CP1252: 0xFC (ü) and 0x96 (–).
        expected = "Z:" + os.path.join(self.tmp, "f\u00fcr", "eicar \u2013 copy.com") \
            .replace("/", "\\")
        upper = "".join(c.upper() if c.isascii() else c for c in expected)
        self.assertEqual(a["metadata"]["scanned_path"], upper)


@unittest.skipUnless(TESTVENDOR, "PSS_TESTVENDOR not set")
class TestvendorTest(WineTestCase):
    engine = "testvendor"

    def setUp(self):
        super().setUp()
        self.env["TESTVENDOR_PATH"] = os.path.dirname(TESTVENDOR)

    def analyze(self, *inputs, env=None, timeout=600, args=()):
        r = self.pss("--engine", "testvendor", "analyze", "--format", "json", *args, *inputs,
                     env=env, timeout=timeout)
        return r, {l["input"]: l["analysis"] for l in r.json_lines()}

    def test_verdicts_names_and_versions(self):
        eicar = self.write("eicar.com", EICAR)
        marker = self.write("marker.txt", MARKER)
        sus = self.write("sus.txt", b"TESTVENDOR-SUSPICIOUS")
        clean = self.write("clean.txt", b"hello")
        for enc in ("cp1252", "utf16le"):
            with self.subTest(encoding=enc):
                r, a = self.analyze(eicar, marker, sus, clean, env={"TESTVENDOR_ENCODING": enc})
                self.assertEqual(r.code, 1, r)
                self.assertEqual(a[eicar]["result_name"], "Trojan.\u00c9icar\u2013Test (\u00fc)")
                self.assertEqual(a[marker]["result_name"], "W\u00f6rm.T\u00ebst.Marker")
                self.assertEqual(a[sus]["result"], "suspicious")
                self.assertEqual(a[sus]["result_name"], "Heur.Verd\u00e4chtig")
                self.assertEqual(a[sus]["bid"], 0)
                self.assertEqual(a[clean]["result"], "benign")
                self.assertEqual(a[clean]["analysis_engine_version"], "2.1.0")
                self.assertEqual(a[clean]["analysis_definition_version"], "2026.11.24.1")
        self.assertNoWineLeft()

    def test_hang_times_out_and_leaves_nothing(self):
        hang = self.write("hang.txt", b"hello")  # testvendor.exe never returns: the timeout ends it
        r, a = self.analyze(hang, env={"TESTVENDOR_MODE": "hang"}, args=("--timeout", "3"))
        self.assertEqual(a[hang]["result"], "unknown", r)
        self.assertTrue(a[hang]["error"].startswith("timeout: "), a[hang])
        self.assertNoWineLeft()

    def test_scanner_environment_is_built_from_scratch(self):
        """Read from /proc while testvendor.exe hangs: Wine's settings reach it, ours not."""
        self.env["PSS_SECRET_MARKER"] = "do-not-leak-7f3a"
        self.env["TESTVENDOR_RUNTIME_DIR"] = self.runtime
        hang = self.write("hang.txt", b"hello")
        env = dict(self.env, TESTVENDOR_MODE="hang")
        # The test stops the run once it has seen testvendor.exe: a timeout that only stops a
        # hung test (a short one could end the scan before a loaded machine gets to look).
        proc = subprocess.Popen([BINARY, "--engine", "testvendor", "analyze", "--format", "json",
                                 "--timeout", "300", hang], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, cwd=self.tmp)
        seen = None
        try:
            deadline = time.monotonic() + PATIENCE
            while seen is None and time.monotonic() < deadline:
                for pid in live_pids("cmdline", b"testvendor.exe"):
                    try:
                        with open(f"/proc/{pid}/environ", "rb") as f:
                            e = dict(kv.split("=", 1) for kv in
                                     f.read().decode("utf-8", "replace").split("\0") if "=" in kv)
                        with open(f"/proc/{pid}/cmdline", "rb") as f:
                            cmdline = f.read()
                    except OSError:
                        continue
                    if e.get("WINEPREFIX") == self.prefix and b"--mode" in cmdline:
                        seen = e
                        break
                time.sleep(0.1)
        finally:
            proc.terminate()  # stops the scan and the engine
            proc.communicate(timeout=120)
        self.assertNoWineLeft()
        self.assertIsNotNone(seen, "testvendor.exe not seen running")
        self.assertNotIn("PSS_SECRET_MARKER", seen)
        self.assertEqual(seen["WINEDEBUG"], "-all")
        self.assertEqual(seen["TESTVENDOR_MODE"], "hang")
        self.assertTrue(seen["HOME"].startswith(os.path.join(self.runtime, "scratch-")), seen)
        # Wine finds its server under TMPDIR: the engine's one, not the scan's scratch dir.
        self.assertEqual(seen["TMPDIR"], self.env.get("TMPDIR", "/tmp"), seen)
        self.assertNotIn("DISPLAY", seen)

    def test_one_wineserver_serves_every_one_shot_run(self):
        """Debian's Wine keys its server socket on TMPDIR: were a scan's TMPDIR its scratch
        dir, each scan would start a wineserver of its own beside the persistent one."""
        files = [self.write(f"f{i}.txt", b"hello") for i in range(24)]
        proc = subprocess.Popen([BINARY, "--engine", "testvendor", "analyze", "--format", "json",
                                 "--concurrency", "2", *files], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env, cwd=self.tmp)
        servers = {}
        try:
            while proc.poll() is None:
                for pid in wine_processes(self.prefix):
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as f:
                            argv = f.read().split(b"\0")
                    except OSError:
                        continue
                    # Not `wineserver -k`, which pssupervise runs to stop the server.
                    if os.path.basename(argv[0]).startswith(b"wineserver") and b"-k" not in argv:
                        servers[pid] = b" ".join(argv).decode()
                time.sleep(0.02)  # a second server would live for a whole scan (> 100 ms)
        finally:
            out, err = proc.communicate(timeout=600)
        r = [json.loads(l) for l in out.decode().splitlines() if l.strip()]
        self.assertEqual(sorted(l["input"] for l in r), sorted(files), err)
        self.assertTrue(all(l["analysis"]["result"] == "benign" for l in r), r)
        self.assertEqual(len(servers), 1, f"wineservers seen for {self.prefix}: {servers}")
        self.assertNoWineLeft()

    def test_crash_is_unknown(self):
        f = self.write("c.txt", b"hello")
        r, a = self.analyze(f, env={"TESTVENDOR_MODE": "crash"})
        self.assertEqual(a[f]["result"], "unknown", r)
        self.assertNotEqual(a[f]["result"], "benign")
        self.assertNoWineLeft()

    def test_spawned_child_does_not_outlive_the_run(self):
        f = self.write("s.txt", b"hello")
        r, a = self.analyze(f, env={"TESTVENDOR_MODE": "spawn"})
        self.assertEqual(a[f]["result"], "benign", r)
        self.assertNoWineLeft()

    def test_garbage_is_never_benign(self):
        f = self.write("g.txt", b"hello")
        r, a = self.analyze(f, env={"TESTVENDOR_MODE": "garbage"})
        self.assertEqual(a[f]["result"], "unknown", r)
        self.assertIn("unparseable output", a[f]["error"])

    def test_missing_file_is_unknown_with_the_vendor_reason(self):
        # The artifact vanishes between fetch and scan: the scanner's own error is kept.
        r = self.pss("--engine", "testvendor", "commands", "scan_file",
                     os.path.join(self.tmp, "nope"), timeout=600)
        self.assertNotEqual(r.code, 0, r)


if __name__ == "__main__":
    unittest.main(verbosity=2)
