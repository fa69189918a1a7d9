#!/usr/bin/python3
"""Windows engines under real Wine: Wine's own find.exe, and the testvendor scanner and
JSON-RPC server built with mingw-w64, with their definitions files (--signatures) and the
server's --work-ms. The prefix is shared by the tests of a run (PSS_WINE_STATE), created once."""
import json
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (BINARY, EICAR, MARKER, PATIENCE, SAMPLES, WINE_STATE,  # noqa: E402
                    PssTestCase, hold_wine_state, live_pids, wait_until)

TESTVENDOR = os.environ.get("PSS_TESTVENDOR", "")
TESTVENDOR_SERVER = os.environ.get("PSS_TESTVENDOR_SERVER", "")

# A definitions file with a detection beyond the built-in ones (a name in CP1252's range, so
# that both exes print it in every encoding), and a file holding its string.
NEW_VERSION = "2027.02.03.4-test"
NEW_NAME = "Neu.Gef\u00e4hrlich.T\u00e4st"
NEW_STRING = b"PSS-NEW-DEFINITION-5e21"
SIGNATURES = (f"version: {NEW_VERSION}\n# a comment, then a blank line\n\n"
              f"{NEW_NAME}={NEW_STRING.decode()}\n").encode()


def wine_processes(prefix):
    """Live processes that belong to a Wine prefix (their environment names it)."""
    return live_pids("environ", f"WINEPREFIX={prefix}\0".encode())


class WineTestCase(PssTestCase):
    engine = None

    def setUp(self):
        super().setUp()
        self.state = os.path.join(WINE_STATE, self.engine)
        os.makedirs(self.state, exist_ok=True)
        self.var = self.engine.upper().replace("-", "_")  # the engine's variables' prefix
        self.env[f"{self.var}_STATE_HOME"] = self.state
        self.prefix = os.path.join(self.state, "wineprefix")

    def assertNoWineLeft(self):
        wait_until(lambda: not wine_processes(self.prefix),
                   what=f"no Wine process left for {self.prefix}",
                   details=lambda: f"left: {wine_processes(self.prefix)}", interval=0.1)

    def definitions(self, data, folder="defs"):
        """A folder holding signatures.txt with `data`, made the engine's DATA_HOME; returns
        the file's path."""
        path = self.write(f"{folder}/signatures.txt", data)
        self.env[f"{self.var}_DATA_HOME"] = os.path.dirname(path)
        return path

    def detection_samples(self):
        """Files for each verdict and precedence: {name: (path, result, result_name)}."""
        cases = {
            "new.bin": (b"xx" + NEW_STRING + b"xx", "malicious", NEW_NAME),
            # The built-in EICAR and marker come first, the suspicious string after.
            "eicar-new.bin": (EICAR + NEW_STRING, "malicious", "Trojan.\u00c9icar\u2013Test (\u00fc)"),
            "marker-new.bin": (NEW_STRING + MARKER, "malicious", "W\u00f6rm.T\u00ebst.Marker"),
            "new-sus.bin": (b"TESTVENDOR-SUSPICIOUS " + NEW_STRING, "malicious", NEW_NAME),
            "sus.bin": (b"TESTVENDOR-SUSPICIOUS", "suspicious", "Heur.Verd\u00e4chtig"),
            "clean.bin": (NEW_STRING[:-1], "benign", None),
        }
        return {name: (self.write(f"in/{name}", data), result, result_name)
                for name, (data, result, result_name) in cases.items()}

    def assertDetections(self, samples, got, r):
        for name, (path, result, result_name) in samples.items():
            a = got[path]
            self.assertEqual(a["result"], result, (name, r))
            self.assertEqual(a.get("result_name"), result_name, (name, a))
            self.assertEqual(a["analysis_definition_version"], NEW_VERSION, (name, a))


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

    def test_signatures_file_adds_a_detection_and_gives_the_version(self):
        self.definitions(SIGNATURES)
        samples = self.detection_samples()
        for enc in ("cp1252", "utf16le"):
            with self.subTest(encoding=enc):
                r, got = self.analyze(*(p for p, _, _ in samples.values()),
                                      env={"TESTVENDOR_ENCODING": enc})
                self.assertEqual(r.code, 1, r)
                self.assertDetections(samples, got, r)
        self.assertNoWineLeft()

    def test_shipped_signatures_file_keeps_the_built_in_version(self):
        f = self.write("new.bin", NEW_STRING)
        r, a = self.analyze(f)  # DATA_HOME: the manifest's, engines/testvendor/defs
        self.assertEqual(a[f]["result"], "benign", r)
        self.assertEqual(a[f]["analysis_definition_version"], "2026.11.24.1")

    def test_malformed_signatures_file_is_an_error_naming_the_line(self):
        sig = self.definitions(b"version: 1\nNo equals sign here\n")
        f = self.write("new.bin", NEW_STRING)
        r, a = self.analyze(f)
        self.assertNotEqual(r.code, 0, r)
        self.assertEqual(a[f]["result"], "unknown", r)
        self.assertIn(f"signatures file {sig}: line 2: no '=' (expected NAME=STRING)",
                      a[f]["error"])
        self.assertNotIn("analysis_definition_version", a[f])  # --version failed too
        self.assertNoWineLeft()

    def test_plain_wine_run_finds_the_new_signature(self):
        """testvendor.exe --signatures FILE under plain `wine`, without pssupervise (which only
        makes the prefix, should this test come first)."""
        if not os.path.exists(os.path.join(self.prefix, ".pssupervise-initialized")):
            self.analyze(self.write("boot.txt", b"hello"))
        sig = self.write("plain/signatures.txt", SIGNATURES)
        f = self.write("plain/new.bin", NEW_STRING)
        env = dict(self.env, WINEPREFIX=self.prefix, WINEDEBUG="-all",
                   WINEDLLOVERRIDES="mscoree,mshtml=")
        try:
            scan = subprocess.run(["wine", TESTVENDOR, "--signatures", sig, f], env=env,
                                  capture_output=True, timeout=PATIENCE)
            version = subprocess.run(["wine", TESTVENDOR, "--signatures", sig, "--version"],
                                     env=env, capture_output=True, timeout=PATIENCE)
        finally:
            subprocess.run(["wineserver", "-k"], env=env, timeout=PATIENCE)
        self.assertEqual(scan.returncode, 1, scan)
        self.assertIn(f"{f}: infected: {NEW_NAME}\r\n".encode("cp1252"), scan.stdout)
        self.assertEqual(version.returncode, 0, version)
        self.assertIn(f"Signature version: {NEW_VERSION}\r\n".encode(), version.stdout)
        self.assertNoWineLeft()

    def test_missing_file_is_unknown_with_the_vendor_reason(self):
        # The artifact vanishes between fetch and scan: the scanner's own error is kept.
        r = self.pss("--engine", "testvendor", "commands", "scan_file",
                     os.path.join(self.tmp, "nope"), timeout=600)
        self.assertNotEqual(r.code, 0, r)


@unittest.skipUnless(TESTVENDOR_SERVER, "PSS_TESTVENDOR_SERVER not set")
class TestvendorServerTest(WineTestCase):
    """testvendor-server.exe under the supervisor: its definitions file, read once at start,
    and --work-ms (test_supervisor.py has its lifecycle and failures)."""
    engine = "testvendor-server"

    def setUp(self):
        super().setUp()
        self.env["TESTVENDOR_SERVER_PATH"] = os.path.dirname(TESTVENDOR_SERVER)
        self.env["TESTVENDOR_SERVER_RUNTIME_DIR"] = self.runtime

    def analyze(self, *inputs, env=None, options=(), args=()):
        """`options` go before `analyze`, `args` after it."""
        r = self.pss("--engine", self.engine, *options, "analyze", "--format", "json", *args,
                     *inputs, env=env, timeout=900)
        return r, {l["input"]: l["analysis"] for l in r.json_lines()}

    def test_signatures_file_adds_a_detection_and_gives_the_version(self):
        self.definitions(SIGNATURES)
        samples = self.detection_samples()
        r, got = self.analyze(*(p for p, _, _ in samples.values()))
        self.assertEqual(r.code, 1, r)
        self.assertDetections(samples, got, r)
        # The `engines` table shows the definitions' version too.
        r = self.pss("--engine", self.engine, "engines", timeout=900)
        row = next((l for l in r.stdout.splitlines() if l.startswith(self.engine + " ")), None)
        self.assertIsNotNone(row, r)
        self.assertRegex(row, r"\s2\.1\.0\s+" + re.escape(NEW_VERSION) + r"\s", r)
        self.assertNoWineLeft()

    def test_malformed_signatures_file_fails_the_start_naming_the_problem(self):
        cases = {
            "missing": (None, "cannot open signatures file {sig} (Windows error 2)"),
            "no-version": (b"2027.1\nName=STRING\n",
                           'signatures file {sig}: line 1: the first line must be '
                           '"version: <text>"'),
            "no-equals": (b"version: 2027.1\n# fine\nName STRING\n",
                          "signatures file {sig}: line 3: no '=' (expected NAME=STRING)"),
            "empty-string": (b"version: 2027.1\nName=\n",
                             "signatures file {sig}: line 2: the string to find is empty"),
        }
        f = self.write("in/new.bin", NEW_STRING)
        for case, (data, message) in cases.items():
            with self.subTest(case=case):
                if data is None:
                    os.makedirs(os.path.join(self.tmp, case), exist_ok=True)
                    self.env["TESTVENDOR_SERVER_DATA_HOME"] = os.path.join(self.tmp, case)
                    sig = os.path.join(self.tmp, case, "signatures.txt")
                else:
                    sig = self.definitions(data, folder=case)
                r = self.pss("--engine", self.engine, "analyze", "--format", "json", f,
                             timeout=900)
                self.assertNotEqual(r.code, 0, r)
                self.assertRegex(r.stderr, r"pssupervise: error: while starting engine "
                                           r"testvendor-server: testvendor-server\.exe died \d+ "
                                           r"times within \d+ s; last: exited with status 6", r)
                self.assertIn("testvendor-server: error: " + message.format(sig=sig), r.stderr)
                self.assertNotIn("initialization completed", r.stderr)
                self.assertNoWineLeft()

    def test_work_ms_scans_queue_and_give_correct_verdicts(self):
        """Each scan 50 ms of CPU in the server, one at a time, with 4 connections asking:
        the verdicts are right (how long it takes is the benchmark's business)."""
        for i in range(16):
            data = (EICAR, MARKER, b"TESTVENDOR-SUSPICIOUS", b"clean %d" % i)[i % 4]
            self.write(f"in/{i:02d}.bin", data)
        want = ("malicious", "malicious", "suspicious", "benign")
        r, got = self.analyze(os.path.join(self.tmp, "in"),
                              env={"TESTVENDOR_SERVER_WORK_MS": "50"},
                              options=("--log-level", "info"), args=("--concurrency", "4"))
        self.assertEqual(r.code, 1, r)
        self.assertEqual(len(got), 16, r)
        for i in range(16):
            a = got[os.path.join(self.tmp, "in", f"{i:02d}.bin")]
            self.assertEqual(a["result"], want[i % 4], (i, a))
        # The setting reached the server.
        self.assertIn("Scan work: 50 ms of CPU time per scan, one scan at a time", r.stderr)
        self.assertNoWineLeft()


if __name__ == "__main__":
    hold_wine_state()
    unittest.main(verbosity=2)
