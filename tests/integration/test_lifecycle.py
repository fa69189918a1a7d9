#!/usr/bin/python3
"""Engine lifecycle on real components: a manifest's `setup` runs once into a read-only
prepared folder (yara's rules compiled once by yarac, each scan `yara -C`), a failing setup is
a clear start error, the definitions version of an engine that reports none is a digest of its
files, `pssupervise update` runs the updater and proves the new definitions load, a failing
updater or a database clamd refuses leaves the old definitions serving and is reported; a
worker and a webhook under a steady stream of 500 bounties take a new signature on SIGHUP
without losing or failing one."""
import os
import re
import shutil
import signal
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (CLAMAV_DB, EICAR, SOURCE_ROOT, PssTestCase, fake_engine,  # noqa: E402
                    wait_until)
from test_celery import CeleryTestCase, file_bounty  # noqa: E402
from test_webhook import WebhookTestCase  # noqa: E402

YARA_RULES = os.path.join(SOURCE_ROOT, "engines", "yara", "rules")
# A signature the project's database does not have: clamd finds it only once it is added.
NEW_SIGNATURE = "PssUpdateTest:0:*:5053532d5550444154452d54455354"
NEW_SAMPLE = b"PSS-UPDATE-TEST"

# Logs each run of a program (its argv) to $1, then runs the real one.
WRAPPER = """#!/bin/sh
echo "$0 $*" >> {log}
exec {real} "$@"
"""


class YaraSetupTest(PssTestCase):
    def setUp(self):
        super().setUp()
        self.rules = os.path.join(self.tmp, "rules")
        shutil.copytree(YARA_RULES, self.rules)
        self.cache = os.path.join(self.tmp, "cache")
        self.runs = os.path.join(self.tmp, "runs.log")
        bin_dir = os.path.join(self.tmp, "bin")
        os.mkdir(bin_dir)
        # Scans are logged by a wrapper; the setup may write nowhere but its folder (Landlock),
        # so its runs are counted from pssupervise's own log.
        path = os.path.join(bin_dir, "yara")
        with open(path, "w") as f:
            f.write(WRAPPER.format(log=self.runs, real="/usr/bin/yara"))
        os.chmod(path, 0o755)
        os.symlink("/usr/bin/yarac", os.path.join(bin_dir, "yarac"))
        self.env.update(YARA_PATH=bin_dir, YARA_DATA_HOME=self.rules, YARA_CACHE_HOME=self.cache)

    def runs_of(self, prog):
        if not os.path.exists(self.runs):
            return []
        with open(self.runs) as f:
            return [l for l in f.read().splitlines() if os.path.basename(l.split()[0]) == prog]

    def test_rules_compiled_once_and_every_scan_uses_the_compiled_file(self):
        files = [self.write(f"in/clean{i}.txt", b"nothing here %d" % i) for i in range(12)]
        self.write("in/eicar.com", EICAR)
        r = self.pss("--log-level", "info", "--engine", "yara", "analyze", "--format", "json",
                     os.path.join(self.tmp, "in"))
        self.assertEqual(r.code, 1, r)
        got = {l["input"]: l for l in r.json_lines()}
        self.assertEqual(got[os.path.join(self.tmp, "in", "eicar.com")]["analysis"]["result"],
                         "malicious", r)
        for f in files:
            self.assertEqual(got[f]["analysis"]["result"], "benign", r)
        prepared = re.findall(r"setup prepared (\S+)", r.stderr)
        self.assertEqual(len(prepared), 1, r.stderr)  # yarac ran once
        self.assertTrue(prepared[0].startswith(os.path.join(self.cache, "prepared") + "/"))
        scans = [s for s in self.runs_of("yara") if not s.endswith(" --version")]
        self.assertEqual(len(scans), 13, scans)
        for s in scans:
            self.assertIn(" -C " + prepared[0] + "/rules.yarc ", s)
        # The generation goes with the engine.
        self.assertEqual(os.listdir(os.path.join(self.cache, "prepared")), [])

    def test_failing_setup_is_a_start_error_with_its_last_lines(self):
        with open(os.path.join(self.rules, "pssupervise.yar"), "a") as f:
            f.write("\nrule Broken { condition: no_such_thing }\n")
        r = self.pss("--engine", "yara", "analyze", self.write("a.txt", b"x"))
        self.assertEqual(r.code, 2, r)
        self.assertIn("setup failed (exited with status 1)", r.stderr)
        self.assertIn("no_such_thing", r.stderr)  # yarac's own words
        self.assertEqual([s for s in self.runs_of("yara") if " -C " in s], [])
        self.assertEqual(os.listdir(os.path.join(self.cache, "prepared")), [])

    def test_definitions_version_is_a_digest_that_changes_with_the_rules(self):
        sample = self.write("a.txt", b"PSS-NEW-RULE")

        def version():
            r, got = self.analyze_json("--engine", "yara", sample)
            return got[sample]["analysis"], r

        a1, r = version()
        self.assertRegex(a1["analysis_definition_version"], r"^custom:[0-9a-f]{12}$", r)
        self.assertEqual(a1["result"], "benign")
        a2, _ = version()
        self.assertEqual(a2["analysis_definition_version"], a1["analysis_definition_version"])
        os.utime(os.path.join(self.rules, "pssupervise.yar"))  # a touch is no change
        a3, _ = version()
        self.assertEqual(a3["analysis_definition_version"], a1["analysis_definition_version"])
        with open(os.path.join(self.rules, "pssupervise.yar"), "a") as f:
            f.write('\nrule PSS_New_Rule { strings: $a = "PSS-NEW-RULE" condition: $a }\n')
        a4, r = version()
        self.assertNotEqual(a4["analysis_definition_version"], a1["analysis_definition_version"])
        self.assertEqual((a4["result"], a4["result_name"]), ("malicious", "PSS_New_Rule"), r)


class PreparedFolderTest(PssTestCase):
    def test_scans_find_the_prepared_folder_read_only(self):
        engines = os.path.join(self.tmp, "engines")
        # The setup writes its data; each scan reports the modes it finds.
        fake_engine(engines, name="prep", setup={
            "argv": ["/bin/sh", "-c", "mkdir sub && echo data > sub/data && echo ok > top",
                     "setup"]},
            scan={"argv": ["/bin/sh", "-c",
                           'echo "$2: modes $(stat -c %a "$1" "$1/sub" "$1/sub/data" "$1/top" '
                           '| tr "\\n" " ")"', "scan", "{prepared}", "{path}"],
                  "rules": [{"pattern": ": modes 555 555 400 400 $", "verdict": "benign"},
                            {"pattern": ": modes (?<error>.*)$"}]})
        sample = self.write("a.txt", b"x")
        r = self.pss("--engines-dir", engines, "--engine", "prep", "analyze", sample,
                     env={"PREP_CACHE_HOME": os.path.join(self.tmp, "cache")})
        self.assertEqual(r.code, 0, r)
        self.assertIn("a.txt: benign", r.stdout)

    def test_a_setup_that_writes_outside_its_folder_is_refused(self):
        engines = os.path.join(self.tmp, "engines")
        outside = os.path.join(self.tmp, "outside.txt")
        # Root as we are here, file permissions would not stop it: Landlock does.
        fake_engine(engines, name="sneaky", setup={
            "argv": ["/bin/sh", "-c", f"echo ok > inside && echo x > {outside}", "setup"]})
        r = self.pss("--engines-dir", engines, "--engine", "sneaky", "analyze",
                     self.write("a.txt", b"x"),
                     env={"SNEAKY_CACHE_HOME": os.path.join(self.tmp, "cache")})
        self.assertEqual(r.code, 2, r)
        self.assertIn("sneaky: setup failed (exited with status 2)", r.stderr)
        self.assertIn(f"cannot create {outside}: Permission denied", r.stderr)
        self.assertFalse(os.path.exists(outside))


class ClamdUpdateTest(PssTestCase):
    def setUp(self):
        super().setUp()
        self.db = os.path.join(self.tmp, "db")
        shutil.copytree(CLAMAV_DB, self.db)
        self.state = os.path.join(self.tmp, "state")
        self.updater = os.path.join(self.tmp, "updater.sh")
        with open(self.updater, "w") as f:
            f.write(f"#!/bin/sh\necho '{NEW_SIGNATURE}' > '{self.db}/update.ndb'\n"
                    "echo 'one new signature'\n")
        os.chmod(self.updater, 0o755)
        self.env.update(CLAMAV_DATA_HOME=self.db, CLAMAV_STATE_HOME=self.state)
        self.sample = self.write("new.bin", NEW_SAMPLE)

    def verdict(self):
        r, got = self.analyze_json(self.sample)
        return got[self.sample]["analysis"]

    def engines_row(self):
        r = self.pss("engines")
        for line in r.stdout.splitlines():
            if line.startswith("clamav "):
                return line
        self.fail(f"no clamav row:\n{r!r}")

    def test_update_runs_the_updater_and_the_new_signature_is_found(self):
        before = self.verdict()
        self.assertEqual(before["result"], "benign")
        r = self.pss("update", env={"CLAMAV_UPDATER": self.updater})
        self.assertEqual(r.code, 0, r)
        m = re.search(r"clamav: updated, definitions (custom:\w+) -> (custom:\w+)", r.stdout)
        self.assertTrue(m, r)
        self.assertEqual(m.group(1), before["analysis_definition_version"])
        after = self.verdict()
        self.assertEqual(after["analysis_definition_version"], m.group(2))
        self.assertNotEqual(m.group(1), m.group(2))
        self.assertEqual((after["result"], after["result_name"]), ("malicious", "PssUpdateTest"))
        self.assertRegex(self.engines_row(), r" ok 20\d\d-")

    def test_a_failing_updater_is_reported_and_changes_nothing(self):
        failing = self.write("fail.sh", b"#!/bin/sh\necho 'mirror unreachable' >&2\nexit 3\n")
        os.chmod(failing, 0o755)
        before = self.verdict()
        r = self.pss("update", env={"CLAMAV_UPDATER": failing})
        self.assertEqual(r.code, 1, r)
        self.assertIn("clamav: update failed (updater), the old definitions stay: the updater "
                      "failed (exited with status 3)", r.stdout)
        self.assertIn("mirror unreachable", r.stdout)
        self.assertEqual(self.verdict(), before)
        self.assertIn("failed (updater)", self.engines_row())

    def test_a_database_clamd_refuses_leaves_the_old_one_serving(self):
        broken = self.write("broken.sh", f"#!/bin/sh\necho 'Broken:::x' > '{self.db}/broken.ndb'\n"
                            .encode())
        os.chmod(broken, 0o755)
        r = self.pss("update", env={"CLAMAV_UPDATER": broken})
        self.assertEqual(r.code, 1, r)
        self.assertIn("update failed (reload)", r.stdout)
        self.assertIn("clamd refused the new definitions and keeps the old ones", r.stdout)
        self.assertIn("failed (reload)", self.engines_row())

    def test_an_engine_without_an_updater_is_refused(self):
        r = self.pss("--engine", "yara", "update")
        self.assertEqual(r.code, 2, r)
        self.assertIn("yara has no updater (set YARA_UPDATER", r.stderr)


class StreamCheck:
    """500 bounties in three phases around a SIGHUP that makes clamd take a new signature:
    150 answered before it, 200 sent while it happens (the signal after the 50th), 150 sent
    once the service logged the new definitions in use. Each kind of artifact is checked
    against the definitions version its own answer names."""

    KINDS = ("new", "clean", "eicar")
    VERSION_RE = r"^custom:[0-9a-f]{12}$"

    def expected(self, kind, new_definitions):
        """(verdict, name) of an artifact of this kind under the old or new definitions."""
        return {"clean": ("benign", None), "eicar": ("malicious", "Eicar-Test-Signature"),
                "new": ("malicious", "PssUpdateTest") if new_definitions
                else ("benign", None)}[kind]

    def stream_setup(self):
        self.db = os.path.join(self.tmp, "db")
        shutil.copytree(CLAMAV_DB, self.db)
        self.env["CLAMAV_DATA_HOME"] = self.db
        self.env["CLAMAV_STATE_HOME"] = os.path.join(self.tmp, "state")

    def add_signature(self, broken=False):
        with open(os.path.join(self.db, "update.ndb"), "w") as f:
            f.write(NEW_SIGNATURE + "\n")
        if broken:
            with open(os.path.join(self.db, "broken.ndb"), "w") as f:
                f.write("Broken:::x\n")

    def run_stream(self, send, answers, log, service, broken=False, reloads=1):
        """send(kind, n) queues bounty n; answers() → {n: (verdict, name, version)};
        log() → the service's log so far; `reloads`: the engines that reload (one per worker
        process with --backend process)."""
        sent = {}

        def send_some(count, phase):
            for _ in range(count):
                n = len(sent)
                kind = self.KINDS[n % 3]
                sent[n] = (kind, phase)
                send(kind, n)

        def answered(ns):
            got = answers()
            return all(n in got for n in ns)

        send_some(150, "before")
        self.wait_until(lambda: answered(range(150)), what="the first 150 answers")
        send_some(50, "during")
        self.add_signature(broken)
        service.send_signal(signal.SIGHUP)
        send_some(150, "during")
        outcome = "update failed" if broken else "new definitions in use"
        self.wait_until(lambda: log().count(outcome) >= reloads,
                        what=f"{outcome!r} {reloads} time(s) in the log", details=log)
        send_some(150, "after")
        self.wait_until(lambda: answered(range(500)), timeout=600, what="500 answers")
        got = answers()
        versions = {}
        for n, (kind, phase) in sent.items():
            versions.setdefault(got[n][2], set()).add(phase)
        old = {got[n][2] for n, (_, phase) in sent.items() if phase == "before"}
        self.assertEqual(len(old), 1, versions)
        for n, (kind, phase) in sent.items():
            verdict, name, version = got[n]
            self.assertRegex(version or "", self.VERSION_RE, (n, got[n]))
            self.assertEqual((verdict, name), self.expected(kind, version not in old),
                             (n, kind, phase, version))
        # One switch: the old version answered nothing sent after the new one was in use.
        if broken:
            self.assertEqual(len(versions), 1, versions)
        else:
            self.assertEqual(len(versions), 2, versions)
            self.assertNotIn("after", versions[next(iter(old))], versions)
        self.assertEqual(log().count(outcome), reloads, log())


class WorkerReloadTest(CeleryTestCase, StreamCheck):
    def setUp(self):
        super().setUp()
        self.stream_setup()
        self.samples = {"new": self.write("new.bin", NEW_SAMPLE),
                        "clean": self.write("clean.txt", b"clean"),
                        "eicar": self.write("eicar.com", EICAR)}
        self.tasks = {}

    def send_one(self, kind, n):
        self.tasks[n] = self.send(file_bounty(self.samples[kind], n + 1)).id

    def answers(self):
        out = {}
        for n, task_id in list(self.tasks.items()):
            meta = self.stored(task_id)
            if meta:
                self.assertEqual(meta["status"], "SUCCESS", meta)
                r = meta["result"]
                out[n] = (r["result"], r.get("result_name"), r.get("analysis_definition_version"))
        return out

    def check(self, broken):
        worker = self.start_worker("--concurrency", "2")
        self.run_stream(self.send_one, self.answers, lambda: self.read_log(worker), worker,
                        broken=broken)

    def test_a_new_signature_under_a_steady_stream(self):
        self.check(broken=False)

    def test_a_refused_database_keeps_the_old_definitions_answering(self):
        self.check(broken=True)
        self.assertIn("clamd refused the new definitions", self.read_log(self.workers[0]))


class WorkerYaraReloadTest(WorkerReloadTest):
    """The same stream through a worker for yara: a new rule, compiled by a new setup."""

    def stream_setup(self):
        self.rules = os.path.join(self.tmp, "rules")
        shutil.copytree(YARA_RULES, self.rules)
        self.env.update(YARA_DATA_HOME=self.rules, YARA_CACHE_HOME=os.path.join(self.tmp, "c"),
                        YARA_STATE_HOME=os.path.join(self.tmp, "state"))

    def add_signature(self, broken=False):
        with open(os.path.join(self.rules, "pssupervise.yar"), "a") as f:
            f.write("\nrule PSS_Update_Test { strings: $a = \"PSS-UPDATE-TEST\" condition: $a }\n")
            if broken:
                f.write("rule Broken { condition: no_such_thing }\n")

    def expected(self, kind, new_definitions):
        return {"clean": ("benign", None), "eicar": ("malicious", "EICAR_Test_File"),
                "new": ("malicious", "PSS_Update_Test") if new_definitions
                else ("benign", None)}[kind]

    def send_one(self, kind, n):
        self.tasks[n] = self.send(file_bounty(self.samples[kind], n + 1), queue="yara").id

    def check(self, broken):
        worker = self.start_worker("--concurrency", "2", engine="yara")
        self.run_stream(self.send_one, self.answers, lambda: self.read_log(worker), worker,
                        broken=broken)

    def test_a_refused_database_keeps_the_old_definitions_answering(self):
        self.check(broken=True)
        self.assertIn("setup failed", self.read_log(self.workers[0]))


class WebhookStream(StreamCheck):
    """The stream through the webhook (with WebhookTestCase): bounties as data: URIs in
    self.uris, answers at self.recv."""

    ENGINE = "clamav"

    def wait_until(self, predicate, timeout=300, what="condition", details=None):
        wait_until(predicate, timeout=timeout, what=what, details=details)

    def send_one(self, kind, n):
        status = self.request("/", self.bounty(self.uris[kind], self.recv.url, bid=n + 1))[0]
        self.assertEqual(status, 202)

    def answers(self):
        with self.recv.lock:
            got = list(self.recv.answers)
        out = {}
        for headers, a in got:
            n = int(headers["X-POLYSWARM-BOUNTY"]) - 1
            md = a.get("metadata", {})
            out[n] = (a["verdict"], md.get("malware_family") or None,
                      md.get("scanner", {}).get("signatures_version"))
        return out

    def check(self, broken, concurrency="2"):
        self.start("--concurrency", concurrency, engine=self.ENGINE)
        self.run_stream(self.send_one, self.answers, self.read_log, self.proc, broken=broken)
        self.assertEqual(self.recv.bad_signatures, 0)
        result = "failed" if broken else "ok"
        self.wait_metric(
            f'pss_engine_updates_total{{engine="{self.ENGINE}",result="{result}"}} 1')


class WebhookReloadTest(WebhookTestCase, WebhookStream):
    def setUp(self):
        super().setUp()
        self.stream_setup()
        self.recv = self.receiver()
        self.uris = {"new": "data:," + urllib.parse.quote(NEW_SAMPLE),
                     "clean": "data:,clean",
                     "eicar": "data:;base64," + __import__("base64").b64encode(EICAR).decode()}

    def test_worker_processes_each_reload_their_own_clamd(self):
        self.start("--backend", "process", "--concurrency", "2")
        self.run_stream(self.send_one, self.answers, self.read_log, self.proc, reloads=2)
        self.assertIn("asked 2 worker(s) to reload their engines", self.read_log())
        # Each worker counts its own reload; /metrics sums them.
        self.wait_metric('pss_engine_updates_total{engine="clamav",result="ok"} 2')

    def test_a_new_signature_under_a_steady_stream(self):
        self.check(broken=False)

    def test_a_refused_database_keeps_the_old_definitions_answering(self):
        self.check(broken=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
