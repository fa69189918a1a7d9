#!/usr/bin/python3
"""`analyze --backend process` end to end: the same answers and exit codes as `local`, one
engine start per worker, workers killed mid-run (their bounties retried), a bounty that kills
its worker every time (answered unknown), interrupts, and nothing left behind."""
import json
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (BINARY, EICAR, PATIENCE, SAMPLES, PssTestCase, fake_engine,  # noqa: E402
                    live_pids, runs_of, wait_until)

class ProcessTestCase(PssTestCase):
    def setUp(self):
        super().setUp()
        self.runs = os.path.join(self.tmp, "runs.log")  # each run, to see retries
        self.engines = os.path.join(self.tmp, "engines")
        # KILLWORKER kills the scanner's parent: the worker process.
        fake_engine(self.engines, runs=self.runs, scan={"timeout": {"base": 20, "grace": 1}})

    def tearDown(self):
        self.assertNothingLeft()
        super().tearDown()

    def mine(self):
        """Our live processes: workers (--engines-dir), scanners and clamd (paths in tmp)."""
        return [p for p in live_pids("cmdline", self.tmp.encode()) if p != os.getpid()]

    def workers(self):
        return [p for p in live_pids("cmdline", b"__worker") if p in self.mine()]

    def assertNothingLeft(self):
        wait_until(lambda: not self.mine(), what="no process left behind",
                   details=lambda: f"left: {self.mine()}")

    def fake(self, *args):
        return ["--engines-dir", self.engines, "--engine", "fake", *args]

    def start(self, *args):
        return subprocess.Popen([BINARY, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env, cwd=self.tmp)

    def wait_for_runs(self, n):
        """Until the scanner has run n times: the workers are busy scanning."""
        wait_until(lambda: len(self.runs_of()) >= n, what=f"{n} scanner runs",
                   details=lambda: f"runs: {self.runs_of()}")

    def runs_of(self):
        return runs_of(self.runs)

    def by_input(self, stdout):
        return {l["input"]: l for l in
                (json.loads(x) for x in stdout.decode("utf-8", "replace").splitlines() if x)}


class SameAsLocalTest(ProcessTestCase):
    def both(self, *args, stdin=None, env=None):
        out = {}
        for backend in ("local", "process"):
            out[backend] = self.pss("analyze", "--backend", backend, *args, stdin=stdin, env=env)
        return out["local"], out["process"]

    def test_samples_json_same_answers(self):
        bad = os.path.join(self.tmp, "raw", "bad-\udcff\udcfe-name")  # not UTF-8
        os.makedirs(os.path.dirname(bad))
        with open(os.fsencode(bad), "wb") as f:
            f.write(EICAR)
        self.write("names/new\nline", b"harmless")
        inputs = [SAMPLES, os.path.join(self.tmp, "raw"), os.path.join(self.tmp, "names"),
                  os.path.join(self.tmp, "missing"), "data:,hello", "-"]
        local, proc = self.both("--format", "json", "--concurrency", "2", *inputs, stdin=EICAR)
        self.assertEqual(local.code, 2, local)  # the missing file
        self.assertEqual(proc.code, local.code, proc)
        lo = {l["input"]: l for l in local.json_lines()}
        pr = {l["input"]: l for l in proc.json_lines()}
        self.assertEqual(len(lo), 10, local)
        self.assertEqual(set(pr), set(lo), proc)
        for name, l in lo.items():
            p = pr[name]
            for key in ("result", "result_name", "error", "comments", "bid"):
                self.assertEqual(p["analysis"].get(key), l["analysis"].get(key), name)
            self.assertEqual(p["analysis"], l["analysis"], name)
            self.assertEqual(p["bounty"], l["bounty"], name)
        self.assertEqual(pr["-"]["analysis"]["result"], "malicious")
        self.assertEqual(pr["-"]["bounty"]["artifact_uri"], "-")
        # Same order as well: inputs in order, directories sorted.
        self.assertEqual([l["input"] for l in proc.json_lines()],
                         [l["input"] for l in local.json_lines()])

    def test_text_output_and_exit_codes(self):
        local, proc = self.both(SAMPLES)
        self.assertEqual(local.code, 1, local)
        self.assertEqual(proc.code, 1, proc)
        self.assertEqual(proc.stdout, local.stdout)
        local, proc = self.both(os.path.join(SAMPLES, "hello.txt"))
        self.assertEqual((local.code, proc.code), (0, 0), proc)
        self.assertEqual(proc.stdout, local.stdout)
        local, proc = self.both(os.path.join(self.tmp, "nope"))
        self.assertEqual((local.code, proc.code), (2, 2), proc)
        self.assertEqual(proc.stdout, local.stdout)

    def test_engine_that_cannot_start_is_exit_2(self):
        local, proc = self.both(os.path.join(SAMPLES, "hello.txt"), "--concurrency", "2",
                                env={"CLAMAV_PATH": "/nonexistent"})
        self.assertEqual(local.code, 2, local)
        self.assertEqual(proc.code, 2, proc)
        self.assertEqual(proc.stdout, "")
        self.assertIn("pssupervise: error: while starting engine clamav:", proc.stderr)
        self.assertIn("set CLAMAV_PATH", proc.stderr)

    def test_bounty_files(self):
        bounty = self.write("b.json", json.dumps({
            "id": 42, "artifact_uri": "file://" + os.path.join(SAMPLES, "eicar.com"),
            "rules": {"min_allowed_bid": 1000, "max_allowed_bid": 2000}}).encode())
        broken = self.write("broken.json", b"{")
        local, proc = self.both("-t", "bounty", "--format", "json", bounty, broken)
        self.assertEqual((local.code, proc.code), (2, 2), proc)
        self.assertEqual(proc.json_lines(), local.json_lines())
        self.assertEqual(proc.json_lines()[0]["analysis"]["bid"], 2000)

    def test_hidden_subcommand(self):
        r = self.pss("--help")
        self.assertNotIn("__worker", r.stdout)


class WorkersTest(ProcessTestCase):
    def test_each_worker_starts_its_engine_once(self):
        paths = [self.write(f"many/{i:02d}.txt", b"file %d" % i) for i in range(12)]
        r = self.pss("--log-level", "info", "analyze", "--backend", "process",
                     "--concurrency", "3", "--format", "json", os.path.join(self.tmp, "many"))
        self.assertEqual(r.code, 0, r)
        self.assertEqual(len(r.json_lines()), len(paths), r)
        started = [l for l in r.stderr.splitlines() if "started clamd (pid" in l]
        self.assertEqual(len(started), 3, r.stderr)
        self.assertEqual(len({l.split("pid ")[1] for l in started}), 3)  # three clamd
        ready = [l for l in r.stderr.splitlines() if "pssupervise[process]" in l and
                 " ready in " in l]
        self.assertEqual(len(ready), 3, r.stderr)
        # Each worker's clamd has a socket of its own, in a subfolder that is gone now.
        sockets = {l.split(" on ")[1] for l in r.stderr.splitlines() if "starting clamd on" in l}
        self.assertEqual(len(sockets), 3, r.stderr)
        self.assertEqual(os.listdir(self.runtime), [])

    def test_no_more_workers_than_inputs(self):
        r = self.pss("--log-level", "info", "analyze", "--backend", "process",
                     "--concurrency", "4", os.path.join(SAMPLES, "hello.txt"))
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.stderr.count("started clamd (pid"), 1, r.stderr)

    def test_killed_worker_is_replaced_and_its_bounties_retried(self):
        paths = [self.write(f"slow/{i:02d}.txt", b"SLOW %d" % i) for i in range(40)]
        p = self.start(*self.fake("analyze", "--backend", "process", "--concurrency", "2",
                                  "--format", "json", os.path.join(self.tmp, "slow")))
        try:
            self.wait_for_runs(6)
            workers = self.workers()
            self.assertEqual(len(workers), 2, workers)
            os.kill(workers[0], signal.SIGKILL)
            out, err = p.communicate(timeout=PATIENCE)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        err = err.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, err)
        got = self.by_input(out)
        self.assertEqual(sorted(got), sorted(paths), err)
        for path in paths:
            self.assertEqual(got[path]["analysis"]["result"], "benign", (path, got[path], err))
        self.assertIn(f"worker (pid {workers[0]}) died while scanning: killed by signal 9", err)
        self.assertIn("job(s) it held will be retried on another worker", err)
        # What it held was scanned again: more runs than files, every file at least once.
        runs = self.runs_of()
        self.assertGreater(len(runs), len(paths))
        self.assertEqual(set(runs), set(paths))

    def test_bounty_that_kills_its_worker_every_time(self):
        paths = [self.write(f"k/{i}.txt", b"harmless %d" % i) for i in range(6)]
        killer = self.write("k/3-killer.txt", b"KILLWORKER")
        eicar = self.write("k/eicar.txt", EICAR)
        r = self.pss(*self.fake("analyze", "--backend", "process", "--concurrency", "2",
                                "--format", "json", os.path.join(self.tmp, "k")))
        self.assertEqual(r.code, 2, r)  # the unknown is an error
        got = {l["input"]: l["analysis"] for l in r.json_lines()}
        self.assertEqual(len(got), 8, r)
        self.assertEqual(got[killer]["result"], "unknown", r)
        self.assertIn("died while scanning", got[killer]["error"])
        self.assertIn("killed by signal 9 (SIGKILL)", got[killer]["error"])
        self.assertEqual(got[killer]["bid"], 0)
        self.assertEqual(got[killer]["product"], "Fake Scanner")
        for p in paths:
            self.assertEqual(got[p]["result"], "benign", (p, r))
        self.assertEqual(got[eicar]["result_name"], "Eicar.Fake")
        # Tried once, then once more (alone, on a new worker), and not again.
        self.assertEqual(self.runs_of().count(killer), 2)

    def test_interrupt_stops_every_worker(self):
        for i in range(40):
            self.write(f"slow/{i:02d}.txt", b"SLOW %d" % i)
        p = self.start(*self.fake("analyze", "--backend", "process", "--concurrency", "2",
                                  os.path.join(self.tmp, "slow")))
        try:
            self.wait_for_runs(4)
            self.assertEqual(len(self.workers()), 2)
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=PATIENCE)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        # Interrupted (128 + SIGTERM), not finished (0), and no worker outlives the run.
        self.assertEqual(p.returncode, 128 + signal.SIGTERM, err)
        self.assertIn(b"interrupted by signal 15", err)
        self.assertEqual(self.workers(), [])

    def test_parent_killed_workers_go_too(self):
        for i in range(40):
            self.write(f"slow/{i:02d}.txt", b"SLOW %d" % i)
        p = self.start(*self.fake("analyze", "--backend", "process", "--concurrency", "2",
                                  os.path.join(self.tmp, "slow")))
        try:
            self.wait_for_runs(4)
            self.assertEqual(len(self.workers()), 2)
            p.kill()  # SIGKILL: the workers get their parent-death SIGTERM
            p.communicate(timeout=PATIENCE)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        # tearDown checks that nothing is left


if __name__ == "__main__":
    unittest.main(verbosity=2)
