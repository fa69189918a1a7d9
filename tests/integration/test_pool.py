#!/usr/bin/python3
"""Pools of vendor servers (daemon.instances) under real Wine: testvendor-server.exe run as 2-3
instances, one killed again and again during 1,000 scans loses nothing; `engines` lists every
instance; a rolling update of a pool through the webhook under a steady stream of bounties
switches every answer to the new definitions once, none lost or unknown; definitions a new
instance refuses leave the old instances serving."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (BINARY, EICAR, PATIENCE, WINE_STATE, hold_wine_state,  # noqa: E402
                    live_pids, wait_until)
from test_lifecycle import WebhookStream  # noqa: E402
from test_supervisor import ENGINE, ServerTestCase  # noqa: E402
from test_webhook import WebhookTestCase  # noqa: E402

NEW_STRING = b"PSS-POOL-UPDATE-TEST"


def signatures(version, extra=""):
    return f"version: {version}\n{extra}"


class PoolTest(ServerTestCase):
    def servers(self):
        """The pids of this test's testvendor-server.exe processes (their scratch folders are
        in this test's runtime dir; the Wine prefix is shared with other tests)."""
        mine = set(live_pids("environ", self.runtime.encode()))
        return sorted(mine & set(live_pids("cmdline", b"testvendor-server.exe")))

    def test_an_instance_killed_again_and_again_during_1000_scans_loses_nothing(self):
        folder = self.samples(1000)
        env = dict(self.env, TESTVENDOR_SERVER_INSTANCES="3")
        proc = subprocess.Popen([BINARY, *self.engine_args(), "analyze", "--format", "json",
                                 "--concurrency", "6", folder],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                cwd=self.tmp)
        errors = []
        reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)
        reader.start()
        # Kills driven by progress, not by time: at these answer counts, one server dies.
        kill_at = {100, 300, 500, 700}
        kills, lines = [], []
        for line in proc.stdout:
            lines.append(line)
            if len(lines) in kill_at:
                # One instance down at a time: the one killed before is back first.
                pids = wait_until(lambda: (lambda p: p if len(p) >= 3 else None)(self.servers()),
                                  what="three servers running")
                os.kill(pids[len(kills) % len(pids)], signal.SIGKILL)
                kills.append(pids)
        code = proc.wait(timeout=600)
        reader.join(PATIENCE)  # its stderr, read to the end
        stderr = errors[0].decode(errors="replace") if errors else ""
        got = {os.path.basename(a["input"]): a["analysis"] for a in map(json.loads, lines)}
        self.assertEqual(len(got), 1000, stderr[-3000:])
        for i in range(1000):
            want = "malicious" if i % 10 == 0 else "benign"
            self.assertEqual(got[f"{i:03d}.bin"]["result"], want, (i, got[f"{i:03d}.bin"]))
        self.assertEqual(code, 1, stderr[-3000:])
        self.assertEqual(len(kills), 4)
        self.assertEqual(stderr.count("restarting in"), 4, stderr)
        self.assertNoWineLeft()

    def test_engines_lists_every_instance(self):
        r = self.pss(*self.engine_args(), "engines",
                     env={"TESTVENDOR_SERVER_INSTANCES": "2"})
        rows = {line.split()[0]: line for line in r.stdout.splitlines() if line.strip()}
        for name in (ENGINE, ENGINE + "#1", ENGINE + "#2"):
            self.assertIn(name, rows, r)
        pids = {rows[ENGINE + "#1"].split()[2], rows[ENGINE + "#2"].split()[2]}
        self.assertEqual(len(pids), 2, r)  # two processes
        self.assertIn("ready", rows[ENGINE + "#2"])

    def test_instances_that_are_not_a_number_are_a_manifest_error(self):
        for value in ("0", "many", "-2"):
            r = self.pss(*self.engine_args(), "analyze", self.write("a.txt", b"x"),
                         env={"TESTVENDOR_SERVER_INSTANCES": value})
            self.assertEqual(r.code, 2, r)
            self.assertIn("field 'daemon.instances' must be a number from 1 to 256 or \"cores\"",
                          r.stderr)
        r = self.pss(*self.engine_args(), "engines", env={"TESTVENDOR_SERVER_INSTANCES": "cores"})
        self.assertIn(ENGINE + "#2", r.stdout)  # this machine has two cores (or more)


class PoolUpdateTest(WebhookTestCase, WebhookStream):
    """The webhook's stream (test_lifecycle.WebhookStream) on a pool of two servers whose
    definitions file gains a signature."""

    ENGINE = ENGINE
    VERSION_RE = r"^2026\.12\.0[12]$"

    def setUp(self):
        super().setUp()
        state = os.path.join(WINE_STATE, ENGINE)
        os.makedirs(state, exist_ok=True)
        self.prefix = os.path.join(state, "wineprefix")
        # The state folder is the shared Wine prefix's: the update's record goes with the test.
        record = os.path.join(state, "last-update.json")
        self.addCleanup(lambda: os.path.exists(record) and os.remove(record))
        self.defs = os.path.join(self.tmp, "defs")
        os.mkdir(self.defs)
        with open(os.path.join(self.defs, "signatures.txt"), "w") as f:
            f.write(signatures("2026.12.01"))
        self.env.update(TESTVENDOR_SERVER_STATE_HOME=state,
                        TESTVENDOR_SERVER_PATH=os.path.dirname(os.environ["PSS_TESTVENDOR_SERVER"]),
                        TESTVENDOR_SERVER_RUNTIME_DIR=self.runtime,
                        TESTVENDOR_SERVER_DATA_HOME=self.defs,
                        TESTVENDOR_SERVER_INSTANCES="2")
        self.recv = self.receiver()
        self.uris = {"new": "data:," + urllib.parse.quote(NEW_STRING),
                     "clean": "data:,clean",
                     "eicar": "data:;base64," + __import__("base64").b64encode(EICAR).decode()}

    def add_signature(self, broken=False):
        text = "Pool.Update.Test=" + NEW_STRING.decode() + "\n"
        with open(os.path.join(self.defs, "signatures.txt"), "w") as f:
            f.write("a line without an equals sign\n" if broken else signatures("2026.12.02", text))

    def expected(self, kind, new_definitions):
        return {"clean": ("benign", None),
                "eicar": ("malicious", "Trojan.\u00c9icar\u2013Test (\u00fc)"),
                "new": ("malicious", "Pool.Update.Test") if new_definitions
                else ("benign", None)}[kind]

    def check(self, broken):
        WebhookStream.check(self, broken, concurrency="4")

    def test_a_rolling_update_of_a_pool_under_a_steady_stream(self):
        self.check(broken=False)
        log = self.read_log()
        # Each instance replaced in turn: two new servers started after the SIGHUP.
        after = log[log.index("reloading the engines' definitions"):]
        self.assertEqual(len(re.findall(r"testvendor-server\.exe #\d \(pid \d+\) ready in",
                                        after)), 2, after)

    def test_definitions_a_new_instance_refuses_keep_the_old_pool_serving(self):
        self.check(broken=True)
        self.assertIn("did not become ready; the old definitions go on serving", self.read_log())


if __name__ == "__main__":
    hold_wine_state()
    unittest.main(verbosity=2)
