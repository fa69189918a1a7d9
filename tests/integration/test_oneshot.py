#!/usr/bin/python3
"""One-shot engines end to end: clamscan, yara, several engines at once, and a fake native
scanner (written by the test, engines as data) for timeouts, crashes and leftovers."""
import hashlib
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (EICAR, SAMPLES, PssTestCase, fake_engine, live_pids, runs_of,  # noqa
                    wait_until)


# For the scans that hang (sleep 1000): a timeout short enough not to make the test slow.
# Nothing else is scanned with it.
HANG_TIMEOUT = ("--timeout", "2")


def processes_with(marker):
    """pids of live (non-zombie) processes whose command line contains marker."""
    return live_pids("cmdline", marker.encode())




class FakeEngineTest(PssTestCase):
    def setUp(self):
        super().setUp()
        self.engines = os.path.join(self.tmp, "engines")
        self.runs = os.path.join(self.tmp, "runs.log")  # lets tests see whether it ran at all
        d = fake_engine(
            # the tag marks every process of this test for the leftover check
            self.engines, runs=self.runs, tag=self.id(),
            # Generous: a scan that ends must never time out, however loaded the machine.
            # The tests of hanging scans give --timeout (HANG_TIMEOUT).
            scan={"encoding": "cp1252", "timeout": {"base": 120, "grace": 0.5}},
            # The author's callbacks: they record each event where the engine runs.
            callbacks={"on_success": ["/bin/sh", "${ENGINE_DIR}/cb.sh", "success"],
                       "on_error": ["/bin/sh", "${ENGINE_DIR}/cb.sh", "error"]})
        self.events = os.path.join(self.tmp, "engine-events")
        with open(os.path.join(d, "cb.sh"), "w") as f:
            f.write('{ printf "%%s %%s " "$1" "$PSS_VERDICT"; cat; } >> %s\n' % self.events)

    def analyze_fake(self, *inputs, args=()):
        r = self.pss("--engines-dir", self.engines, "--engine", "fake", "analyze",
                     "--format", "json", *args, *inputs)
        return r, {l["input"]: l["analysis"] for l in r.json_lines()}

    def assertNoLeftovers(self):
        wait_until(lambda: not processes_with(self.id()), what="no process left behind",
                   details=lambda: f"left: {processes_with(self.id())}")

    def engine_events(self):
        if not os.path.exists(self.events):
            return []
        with open(self.events) as f:
            return [(l.split(" ", 2)[0], l.split(" ", 2)[1], json.loads(l.split(" ", 2)[2]))
                    for l in f]

    def test_the_engines_callbacks_run_once_per_bounty(self):
        eicar = self.write("e.com", EICAR)
        clean = self.write("c.txt", b"clean")
        crash = self.write("x.txt", b"CRASH")
        r, got = self.analyze_fake(eicar, clean, crash)
        events = sorted((e[2]["input"], e[0], e[1]) for e in self.engine_events())
        self.assertEqual(events, sorted([(eicar, "success", "malicious"),
                                         (clean, "success", "benign"),
                                         (crash, "error", "unknown")]), r)
        err = next(e[2] for e in self.engine_events() if e[0] == "error")
        self.assertEqual(err["engine"], "fake")
        self.assertIn("crashed", err["error"])
        self.assertEqual(err["analysis"]["error"], err["error"])

    def test_a_failing_callback_changes_no_answer(self):
        with open(os.path.join(self.engines, "fake", "cb.sh"), "w") as f:
            f.write("exit 3\n")
        r, got = self.analyze_fake(self.write("e.com", EICAR))
        self.assertEqual(list(got.values())[0]["result"], "malicious")
        self.assertEqual(r.code, 1)
        self.assertIn("success callback '/bin/sh' for ", r.stderr)
        self.assertIn("exited with status 3", r.stderr)

    def test_verdicts_and_cp1252_name(self):
        clean = self.write("clean.txt", b"nothing")
        eicar = self.write("eicar.txt", EICAR)
        cp = self.write("cp.txt", b"CP1252")
        r, a = self.analyze_fake(clean, eicar, cp)
        self.assertEqual(r.code, 1, r)
        self.assertIn(clean, runs_of(self.runs))
        self.assertEqual(a[clean]["result"], "benign")
        self.assertEqual(a[eicar]["result_name"], "Eicar.Fake")
        # 0xFC is ü and 0x96 is an en dash in CP1252; the CR of CRLF is gone.
        self.assertEqual(a[cp]["result_name"], "W\u00fcrm\u2013X")

    def test_timeout_is_unknown_and_kills_the_group(self):
        hang = self.write("hang.txt", b"HANG")  # sleeps 1000 s: only the timeout ends it
        r, a = self.analyze_fake(hang, args=HANG_TIMEOUT)
        self.assertEqual(a[hang]["result"], "unknown", r)
        self.assertTrue(a[hang]["error"].startswith("timeout: "), a[hang])
        self.assertEqual(r.code, 2)
        self.assertNoLeftovers()

    def test_sigterm_ignored_then_sigkill(self):
        stubborn = self.write("stubborn.txt", b"IGNORETERM")
        r, a = self.analyze_fake(stubborn, args=HANG_TIMEOUT)
        self.assertTrue(a[stubborn]["error"].startswith("timeout: "), r)
        self.assertNoLeftovers()

    def test_crash_is_unknown_never_benign(self):
        crash = self.write("crash.txt", b"CRASH")
        r, a = self.analyze_fake(crash)
        self.assertEqual(a[crash]["result"], "unknown", r)
        self.assertIn("crashed: ", a[crash]["error"])
        self.assertIn("SIGSEGV", a[crash]["error"])

    def test_garbage_and_bad_exit_are_unknown(self):
        garbage = self.write("garbage.txt", b"GARBAGE")
        bad = self.write("bad.txt", b"BADEXIT")
        r, a = self.analyze_fake(garbage, bad)
        self.assertEqual(a[garbage]["result"], "unknown", r)
        self.assertIn("unparseable output", a[garbage]["error"])
        self.assertEqual(a[bad]["result"], "unknown")
        self.assertIn("unexpected status 42", a[bad]["error"])

    def test_child_outliving_the_scanner_is_killed(self):
        spawn = self.write("spawn.txt", b"SPAWN")
        r, a = self.analyze_fake(spawn)
        self.assertEqual(a[spawn]["result"], "benign", r)
        self.assertNoLeftovers()

    def test_result_taken_at_exit_not_at_eof(self):
        # A grandchild keeps stdout open for 1000 s: the answer must not wait for it. Were it
        # to wait, the scan's timeout would end it: unknown, not benign.
        hold = self.write("hold.txt", b"HOLDPIPE")
        r, a = self.analyze_fake(hold)
        self.assertEqual(a[hold]["result"], "benign", r)
        self.assertNoLeftovers()

    def test_stderr_noise_is_not_parsed(self):
        noisy = self.write("noisy.txt", b"NOISE")
        r, a = self.analyze_fake(noisy)
        self.assertEqual(a[noisy]["result"], "benign", r)

    def test_many_concurrent_hangs_all_answered(self):
        paths = [self.write(f"h/{i}.txt", b"HANG" if i % 2 else b"ok") for i in range(8)]
        # The hangs end at the 10 s timeout; the others are answered long before it.
        r = self.pss("--engines-dir", self.engines, "--engine", "fake", "analyze",
                     "--format", "json", "--concurrency", "4", "--timeout", "10",
                     os.path.join(self.tmp, "h"))
        lines = r.json_lines()
        self.assertEqual(len(lines), 8, r)
        got = {l["input"]: l["analysis"]["result"] for l in lines}
        self.assertEqual(got, {p: "unknown" if i % 2 else "benign" for i, p in enumerate(paths)})
        self.assertNoLeftovers()

    def test_unsupported_type_is_skipped_without_running(self):
        manifest_path = os.path.join(self.engines, "fake", "engine.json")
        with open(manifest_path) as f:
            manifest = json.load(f)
        manifest["categories"] = ["pe", "office"]
        with open(manifest_path, "w") as f:
            json.dump(manifest, f)
        text = self.write("text.txt", b"plain text")
        r, a = self.analyze_fake(text)
        self.assertNotIn(text, runs_of(self.runs), "the scanner ran")
        self.assertEqual(r.code, 0, r)  # a skip is not an error
        self.assertEqual(a[text]["result"], "unknown")
        self.assertEqual(a[text]["comments"], "SKIPPED:TYPE-UNSUPPORTED")
        self.assertEqual(a[text]["metadata"]["skipped"], "fake does not scan text/plain")
        self.assertEqual(a[text]["bid"], 0)

    def test_bad_manifest_is_a_clear_error(self):
        with open(os.path.join(self.engines, "fake", "engine.json"), "w") as f:
            json.dump({"product": "x", "vendor": "y", "categories": ["*"], "driver": "oneshot",
                       "scan": {"argv": ["x"], "rules": [{"pattern": "("}]}}, f)
        r = self.pss("--engines-dir", self.engines, "--engine", "fake", "analyze",
                     os.path.join(SAMPLES, "hello.txt"))
        self.assertEqual(r.code, 2, r)
        self.assertIn("rules[0].pattern", r.stderr)
        self.assertIn("engine.json", r.stderr)


class Sha256PlaceholderTest(PssTestCase):
    def test_text_output_still_hashes_for_an_engine_that_uses_sha256(self):
        """Text output shows no digest, so analyze reads no file to hash it, unless an engine's
        argv asks for {sha256}: this scanner logs to a file named by the digest it gets."""
        engines = os.path.join(self.tmp, "engines")
        fake_engine(engines, runs=os.path.join(self.tmp, "by-sha-{sha256}.log"))
        files = {self.write("a.txt", b"first"): hashlib.sha256(b"first").hexdigest(),
                 self.write("b.txt", b"second"): hashlib.sha256(b"second").hexdigest()}
        r = self.pss("--engines-dir", engines, "--engine", "fake", "analyze", *files)
        self.assertEqual(r.code, 0, r)
        self.assertEqual(sorted(r.stdout.splitlines()), sorted(f"{f}: benign" for f in files))
        for f, digest in files.items():
            self.assertEqual(runs_of(os.path.join(self.tmp, f"by-sha-{digest}.log")), [f])


class ShippedEnginesTest(PssTestCase):
    def test_clamscan(self):
        r = self.pss("--engine", "clamscan", "analyze", "--format", "json", SAMPLES)
        self.assertEqual(r.code, 1, r)
        got = {os.path.basename(l["input"]): l["analysis"] for l in r.json_lines()}
        self.assertEqual(got["eicar.com"]["result_name"], "Eicar-Test-Signature")
        self.assertEqual(got["eicar.zip"]["result"], "malicious")
        self.assertEqual(got["test-signature.txt"]["result_name"], "PSS.Test.Marker-7f3a")
        self.assertEqual(got["hello.txt"]["result"], "benign")
        self.assertRegex(got["hello.txt"]["analysis_engine_version"], r"^\d+\.\d+")
        self.assertEqual(got["hello.txt"]["product"], "ClamAV (clamscan)")

    def test_clamscan_error_is_unknown(self):
        r = self.pss("--engine", "clamscan", "analyze", "--format", "json",
                     os.path.join(SAMPLES, "hello.txt"),
                     env={"CLAMSCAN_DATA_HOME": os.path.join(self.tmp, "nodb")})
        a = r.json_lines()[0]["analysis"]
        self.assertEqual(a["result"], "unknown", r)
        self.assertIn("clamscan failed (exit status 2)", a["error"])

    def test_yara(self):
        r = self.pss("--engine", "yara", "analyze", "--format", "json", SAMPLES)
        self.assertEqual(r.code, 1, r)
        got = {os.path.basename(l["input"]): l["analysis"] for l in r.json_lines()}
        self.assertEqual(got["eicar.com"]["result_name"], "EICAR_Test_File")
        self.assertEqual(got["test-signature.txt"]["result_name"], "PSS_Test_Marker")
        self.assertEqual(got["hello.sh"]["result"], "benign")
        self.assertEqual(got["hello.sh"]["product"], "YARA")

    def test_yara_custom_rules(self):
        rules = os.path.join(self.tmp, "rules")
        os.mkdir(rules)
        with open(os.path.join(rules, "pssupervise.yar"), "w") as f:
            f.write('rule Hello_Rule { strings: $h = "Hello from" condition: $h }\n')
        r = self.pss("--engine", "yara", "analyze", os.path.join(SAMPLES, "hello.txt"),
                     env={"YARA_DATA_HOME": rules})
        self.assertEqual(r.stdout.strip().split(": ", 1)[1], "malicious Hello_Rule", r)

    def test_multi_engine(self):
        r = self.pss("--engine", "clamav,yara,clamscan", "analyze", "--format", "json", SAMPLES)
        self.assertEqual(r.code, 1, r)
        lines = r.json_lines()
        self.assertEqual(len(lines), 5 * 3)
        per = {}
        for l in lines:
            per.setdefault(os.path.basename(l["input"]), {})[l["engine"]] = l["analysis"]
        self.assertEqual({e: a["result"] for e, a in per["eicar.com"].items()},
                         {"clamav": "malicious", "yara": "malicious", "clamscan": "malicious"})
        self.assertEqual({e: a["result"] for e, a in per["hello.txt"].items()},
                         {"clamav": "benign", "yara": "benign", "clamscan": "benign"})
        # The same bounty for every engine of one artifact.
        ids = {l["bounty"]["id"] for l in lines if l["input"].endswith("eicar.com")}
        self.assertEqual(len(ids), 1)

    def test_multi_engine_one_failing_does_not_touch_others(self):
        r = self.pss("--engine", "clamav,yara", "analyze", "--format", "json",
                     os.path.join(SAMPLES, "eicar.com"), env={"CLAMAV_PATH": "/nonexistent"})
        self.assertEqual(r.code, 2, r)
        got = {l["engine"]: l["analysis"] for l in r.json_lines()}
        self.assertEqual(got["yara"]["result"], "malicious")
        self.assertEqual(got["clamav"]["result"], "unknown")
        self.assertIn("engine failed to start", got["clamav"]["error"])

    def test_text_output_names_engines(self):
        r = self.pss("--engine", "yara,clamscan", "analyze", os.path.join(SAMPLES, "eicar.com"))
        self.assertIn("eicar.com: yara: malicious EICAR_Test_File", r.stdout, r)
        self.assertIn("eicar.com: clamscan: malicious Eicar-Test-Signature", r.stdout)


class CommandsTest(PssTestCase):
    def test_list(self):
        r = self.pss("--engine", "clamscan", "commands")
        self.assertEqual(r.code, 0, r)
        self.assertIn("info", r.stdout)
        self.assertIn("scan_file FILE...", r.stdout)
        self.assertRegex(r.stdout, r"version \[ARGS\.\.\.\]\s+clamscan's version")

    def test_info(self):
        r = self.pss("--engine", "yara", "commands", "info")
        self.assertEqual(r.code, 0, r)
        info = json.loads(r.stdout)
        self.assertEqual(info["engine"], "yara")
        self.assertEqual(info["driver"], "oneshot")
        self.assertRegex(info["engine_version"], r"^\d+\.\d+")
        self.assertTrue(info["environment"]["YARA_DATA_HOME"].endswith("engines/yara/rules"))

    def test_scan_file(self):
        r = self.pss("--engine", "clamscan", "commands", "scan_file",
                     os.path.join(SAMPLES, "eicar.com"), os.path.join(SAMPLES, "hello.txt"))
        self.assertEqual(r.code, 1, r)
        lines = r.json_lines()
        self.assertEqual([l["analysis"]["result"] for l in lines], ["malicious", "benign"])

    def test_manifest_command_with_options(self):
        r = self.pss("--engine", "clamscan", "commands", "version")
        self.assertEqual(r.code, 0, r)
        self.assertRegex(r.stdout, r"^ClamAV \d")
        r = self.pss("--engine", "clamscan", "commands", "sigtool", "--bogus-option")
        self.assertNotEqual(r.code, 0, r)
        self.assertIn("--bogus-option", r.stderr)  # passed through to sigtool, which refused it

    def test_unknown_command(self):
        r = self.pss("--engine", "clamscan", "commands", "frobnicate")
        self.assertEqual(r.code, 2, r)
        self.assertIn("has no command 'frobnicate' (known: info, scan_file", r.stderr)

    def test_one_engine_only(self):
        r = self.pss("--engine", "clamscan,yara", "commands", "info")
        self.assertEqual(r.code, 2, r)
        self.assertIn("commands works on one engine", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
