#!/usr/bin/python3
"""The supervisor with a real vendor server: testvendor-server.exe (mingw-w64) as a JSON-RPC
server under real Wine with a persistent wineserver. Slow starts, crashes, hangs, refusals,
SIGTERM, and the `engines` table. Failure modes use a variant of the shipped manifest with
the server's test switches added to its argv."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (BINARY, EICAR, MARKER, PATIENCE, SOURCE_ROOT, WINE_STATE,  # noqa: E402
                    PssTestCase, hold_wine_state, live_pids, wait_until)

SERVER = os.environ["PSS_TESTVENDOR_SERVER"]
MANIFEST = os.path.join(SOURCE_ROOT, "engines", "testvendor-server", "engine.json")
HANG = b"PSS-TESTVENDOR-HANG-c41d"
ENGINE = "testvendor-server"


def wine_processes(prefix):
    return live_pids("environ", f"WINEPREFIX={prefix}\0".encode())


class ServerTestCase(PssTestCase):
    def setUp(self):
        super().setUp()
        self.state = os.path.join(WINE_STATE, ENGINE)
        os.makedirs(self.state, exist_ok=True)
        self.prefix = os.path.join(self.state, "wineprefix")
        self.env["TESTVENDOR_SERVER_STATE_HOME"] = self.state
        self.env["TESTVENDOR_SERVER_PATH"] = os.path.dirname(SERVER)
        self.env["TESTVENDOR_SERVER_RUNTIME_DIR"] = self.runtime
        self.engines_dir = None

    def variant(self, extra_argv=(), **fields):
        """A copy of the shipped manifest with server switches and daemon fields changed; its
        definitions stay the shipped ones (${ENGINE_DIR}/defs would be the copy's folder)."""
        with open(MANIFEST) as f:
            m = json.load(f)
        m["env"]["DATA_HOME"] = os.path.join(os.path.dirname(MANIFEST), "defs")
        m["daemon"]["argv"] += list(extra_argv)
        for key, value in fields.items():
            section, _, name = key.partition("__")
            if name:
                m[section][name] = value
            else:
                m[section] = value
        self.engines_dir = os.path.join(self.tmp, "engines")
        os.makedirs(os.path.join(self.engines_dir, ENGINE), exist_ok=True)
        with open(os.path.join(self.engines_dir, ENGINE, "engine.json"), "w") as f:
            json.dump(m, f)
        return m

    def engine_args(self):
        args = ["--engine", ENGINE]
        if self.engines_dir:
            args += ["--engines-dir", self.engines_dir]
        return args

    def analyze(self, *inputs, args=(), env=None, timeout=900):
        r = self.pss(*self.engine_args(), "analyze", "--format", "json", *args, *inputs,
                     env=env, timeout=timeout)
        return r, {os.path.basename(l["input"]): l["analysis"] for l in r.json_lines()}

    def samples(self, n, every_eicar=10, extra=()):
        """n files in a folder: every `every_eicar`-th is EICAR, the others clean."""
        for i in range(n):
            self.write(f"set/{i:03d}.bin", EICAR if i % every_eicar == 0 else b"clean %d" % i)
        for name, data in extra:
            self.write(f"set/{name}", data)
        return os.path.join(self.tmp, "set")

    def assertNoWineLeft(self):
        wait_until(lambda: not wine_processes(self.prefix),
                   what=f"no Wine process left for {self.prefix}",
                   details=lambda: f"left: {wine_processes(self.prefix)}", interval=0.1)

    def assertAllCorrect(self, got, n, every_eicar=10):
        self.assertEqual(len(got), n)
        for i in range(n):
            a = got[f"{i:03d}.bin"]
            want = "malicious" if i % every_eicar == 0 else "benign"
            self.assertEqual(a["result"], want, (i, a))


class LifecycleTest(ServerTestCase):
    def test_verbose_run_shows_the_server_lifecycle_and_verdicts(self):
        self.write("in/eicar.com", EICAR)
        self.write("in/marker.txt", MARKER)
        self.write("in/hello.txt", b"hello\n")
        r = self.pss(*self.engine_args(), "analyze", "-v", os.path.join(self.tmp, "in"),
                     timeout=900)
        self.assertEqual(r.code, 1, r)
        lines = [
            "Starting TestVendor Antivirus JSON RPC server...",
            "OS environment: WINE",
            "Installation path: ",
            "Executable path: ",
            "JSON RPC server initialization started (PID: ",
            "JSON RPC server initialization completed",
            "JSON RPC server has finished.",
        ]
        pos = 0
        for line in lines:
            at = r.stderr.find(line, pos)
            self.assertGreaterEqual(at, 0, f"{line!r} missing or out of order:\n{r.stderr}")
            pos = at
        self.assertRegex(r.stderr, r"testvendor-server\.exe \(pid \d+\) ready in \d+ ms")
        self.assertIn("asking it to shut down", r.stderr)
        # The seed's verbose layout, with the names decoded from CP1252.
        self.assertIn('"result_name": "Trojan.\u00c9icar\u2013Test (\u00fc)"', r.stdout)
        self.assertIn('"result_name": "W\u00f6rm.T\u00ebst.Marker"', r.stdout)
        self.assertNoWineLeft()

    def test_versions_and_names_in_utf16(self):
        self.write("in/eicar.com", EICAR)
        self.write("in/hello.txt", b"hello\n")
        r, got = self.analyze(os.path.join(self.tmp, "in"),
                              env={"TESTVENDOR_SERVER_ENCODING": "utf16le"})
        self.assertEqual(r.code, 1, r)
        self.assertEqual(got["eicar.com"]["result_name"], "Trojan.\u00c9icar\u2013Test (\u00fc)")
        self.assertEqual(got["eicar.com"]["analysis_engine_version"], "2.1.0")
        self.assertEqual(got["eicar.com"]["analysis_definition_version"], "2026.11.24.1")
        self.assertEqual(got["hello.txt"]["result"], "benign")

    def test_stdio_transport_with_content_length_framing(self):
        m = self.variant()
        argv = [a for a in m["daemon"]["argv"] if a not in ("--port", "{port}")]
        self.variant(daemon__argv=argv + ["--stdio", "--framing", "content-length"],
                     jsonrpc__transport="stdio", jsonrpc__framing="content-length")
        path = self.samples(20)
        r, got = self.analyze(path)
        self.assertEqual(r.code, 1, r)
        self.assertAllCorrect(got, 20)
        self.assertNoWineLeft()

    def test_stdio_server_crashing_loses_nothing(self):
        # On stdio, a crash leaves winedbg's report in the reply stream before EOF.
        m = self.variant()
        argv = [a for a in m["daemon"]["argv"] if a not in ("--port", "{port}")]
        self.variant(daemon__argv=argv + ["--stdio", "--crash-after", "7"],
                     daemon__restart={"min_delay": 0.1, "max_delay": 1, "max_deaths": 20,
                                      "window": 600},
                     jsonrpc__transport="stdio")
        path = self.samples(30)
        r, got = self.analyze(path)
        self.assertEqual(r.code, 1, r)
        self.assertAllCorrect(got, 30)
        self.assertGreaterEqual(len(re.findall(r"is down \(.*\); restarting in", r.stderr)), 3)
        self.assertNoWineLeft()

    def test_slow_start_is_waited_for(self):
        self.write("in/eicar.com", EICAR)
        r, got = self.analyze(os.path.join(self.tmp, "in"), args=(),
                              env={"TESTVENDOR_SERVER_INIT_MS": "3000"})
        self.assertEqual(got["eicar.com"]["result"], "malicious", r)
        r = self.pss(*self.engine_args(), "--log-level", "info", "analyze",
                     os.path.join(self.tmp, "in"), env={"TESTVENDOR_SERVER_INIT_MS": "3000"},
                     timeout=900)
        # Ready once the server says its initialization (the 3 s) is over, not before.
        started = r.stderr.find("JSON RPC server initialization started")
        loading = r.stderr.find("Loading signatures (3000 ms)...")  # the setting reached it
        completed = r.stderr.find("JSON RPC server initialization completed")
        ready = re.search(r"testvendor-server\.exe \(pid \d+\) ready in \d+ ms", r.stderr)
        self.assertGreaterEqual(started, 0, r.stderr)
        self.assertGreater(loading, started, r.stderr)
        self.assertGreater(completed, loading, r.stderr)
        self.assertIsNotNone(ready, r.stderr)
        self.assertGreater(ready.start(), completed, r.stderr)

    def test_engines_table_shows_state_pid_uptime_restarts(self):
        r = self.pss(*self.engine_args(), "engines", timeout=900)
        row = next(l for l in r.stdout.splitlines() if l.startswith(ENGINE + " "))
        self.assertRegex(row, r"\bjsonrpc\s+wine\b")
        self.assertRegex(row, r"\b2\.1\.0\s+2026\.11\.24\.1\s+ready\s+\d+\s+\d+\.\ds\s+0\s+-$", r)
        self.assertNoWineLeft()


class FailureTest(ServerTestCase):
    def test_crashes_during_200_files_lose_nothing(self):
        self.variant(["--crash-after", "50"],
                     daemon__restart={"min_delay": 0.1, "max_delay": 2, "max_deaths": 20,
                                      "window": 600})
        path = self.samples(200)
        r, got = self.analyze(path, args=("--concurrency", "4"))
        self.assertEqual(r.code, 1, r)
        self.assertAllCorrect(got, 200)
        restarts = len(re.findall(r"is down \(.*\); restarting in", r.stderr))
        self.assertGreaterEqual(restarts, 3, r.stderr)
        self.assertIn("retrying once", r.stderr)
        self.assertNoWineLeft()

    def test_a_hang_costs_one_bounty_and_a_restart(self):
        self.variant(["--hang-marker", HANG.decode()])
        path = self.samples(20, extra=[("hang.bin", b"xx" + HANG + b"xx")])
        # The timeout also bounds a scan's wait for the restarted server: generous, then.
        r, got = self.analyze(path, args=("--timeout", "30", "--concurrency", "2"))
        self.assertEqual(got["hang.bin"]["result"], "unknown", r)
        self.assertRegex(got["hang.bin"]["error"], r"^timeout: testvendor-server\.exe did not "
                                                   r"answer the scan within \d+\.\d s")
        del got["hang.bin"]
        self.assertAllCorrect(got, 20)
        self.assertRegex(r.stderr, r"did not answer the scan within .*; killing it")
        self.assertNoWineLeft()

    def test_a_failed_engine_answers_every_bounty_unknown(self):
        self.variant(["--crash-after", "3"],
                     daemon__restart={"min_delay": 0.1, "max_deaths": 2, "window": 600})
        path = self.samples(30)
        r, got = self.analyze(path, args=("--concurrency", "1"))
        self.assertEqual(r.code, 2, r)
        self.assertEqual(len(got), 30)  # every bounty answered
        failed = [a for a in got.values() if a["result"] == "unknown"]
        self.assertGreaterEqual(len(failed), 20, r)
        self.assertIn("engine failed: testvendor-server.exe died 2 times within 600 s",
                      failed[-1]["error"])
        self.assertGreaterEqual(30 - len(failed), 6)
        self.assertIn("testvendor-server.exe failed: died 2 times", r.stderr)
        self.assertNoWineLeft()

    def test_a_json_rpc_error_is_unknown_with_its_reason(self):
        self.variant(jsonrpc__scan={"method": "scan", "params": {"path": "{nt_path}.missing"},
                                    "verdicts": {"infected": "malicious", "clean": "benign"}})
        self.write("in/hello.txt", b"hello")
        r, got = self.analyze(os.path.join(self.tmp, "in"))
        self.assertEqual(r.code, 2, r)
        self.assertRegex(got["hello.txt"]["error"],
                         r"^testvendor-server\.exe: error -32001: cannot open Z:\\.*"
                         r"hello\.txt\.missing \(Windows error 2\)$")
        self.assertNotIn("restarting", r.stderr)  # an answer, even an error, is not a death

    def test_ready_when_its_port_accepts(self):
        self.variant(daemon__ready={"probe": False, "connect": "tcp:127.0.0.1:{port}",
                                    "timeout": 120})
        self.write("in/eicar.com", EICAR)
        r, got = self.analyze(os.path.join(self.tmp, "in"))
        self.assertEqual(got["eicar.com"]["result"], "malicious", r)

    def test_refusing_to_start_fails_clearly_within_the_start_deadline(self):
        self.variant(["--refuse-start"])
        r = self.pss(*self.engine_args(), "analyze", os.path.join(self.tmp), timeout=900)
        self.assertEqual(r.code, 2, r)
        # Given up on after its deaths (not after waiting out the start deadline).
        self.assertRegex(r.stderr, r"pssupervise: error: while starting engine testvendor-server: "
                                   r"testvendor-server\.exe died 5 times within 60 s; "
                                   r"last: exited with status 3")
        self.assertNotIn("not ready within", r.stderr)
        self.assertIn("License check failed: license expired", r.stderr)
        self.assertNoWineLeft()

    def test_sigterm_stops_the_server_and_the_wineserver(self):
        self.variant(["--hang-marker", HANG.decode()])
        path = self.samples(4, extra=[("hang.bin", HANG)])
        e = dict(self.env)
        proc = subprocess.Popen([BINARY, *self.engine_args(), "--log-level", "info", "analyze",
                                 "--timeout", "600", path], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=e, cwd=self.tmp)
        try:
            # Answers keep the inputs' order, hang.bin last: once the four files before it are
            # answered, the server is up and the scan of hang.bin (which never returns) is out.
            answered = []

            def read_answers():
                for _ in range(4):
                    line = proc.stdout.readline()
                    if not line:
                        return
                    answered.append(line)
            reader = threading.Thread(target=read_answers, daemon=True)
            reader.start()
            wait_until(lambda: len(answered) == 4 or not reader.is_alive(), timeout=300,
                       what="the four files before hang.bin answered")
            self.assertEqual(len(answered), 4, answered)
            self.assertTrue(wine_processes(self.prefix), "the server is not running")
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=PATIENCE)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.assertEqual(proc.returncode, 128 + signal.SIGTERM, err.decode())
        self.assertIn(b"interrupted by signal 15", err)
        self.assertNoWineLeft()


if __name__ == "__main__":
    hold_wine_state()
    unittest.main(verbosity=2)
