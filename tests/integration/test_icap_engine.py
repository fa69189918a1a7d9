#!/usr/bin/python3
"""Our `icap` engine (an ICAP client) against a real c-icap in front of a real clamd: verdicts,
versions, keep-alive, preview and 100 Continue, a server that goes down and comes back, the
engine started without its URL, and engines/c-icap, whose c-icap we start, killed mid-run."""
import os
import re
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (EICAR, PATIENCE, Clamd, PssTestCase, children_of, live_pids,  # noqa: E402
                    wait_until)
from icap_support import (CIcap, c_icap_leftovers, group_pids,  # noqa: E402
                          remove_files, threat_names)
from test_webhook import EICAR_URI, WebhookTestCase  # noqa: E402

CLEAN_URI = "data:;base64," + __import__("base64").b64encode(b"nothing to see here\n").decode()


def comm_of(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


class IcapServerMixin:
    """A clamd and a c-icap in front of it, both the test's, stopped by pid."""

    def start_servers(self):
        self.clamd = Clamd(self.tmp)
        self.addCleanup(self.clamd.stop)
        self.cicap = self.start_cicap()

    def start_cicap(self, **kw):
        c = CIcap(self.tmp, self.clamd.socket, **kw)
        self.addCleanup(c.stop)
        return c

    def icap_env(self, cicap=None):
        return {"ICAP_URL": (cicap or self.cicap).url}

    def respmods(self, cicap=None, at_least=0):
        """The RESPMOD lines of c-icap's access log: one per request it answered. c-icap logs
        a request after its answer has gone out, so a client may be done before the line is
        written: the caller that knows how many to expect waits for `at_least` of them."""
        def lines():
            with open((cicap or self.cicap).access_log) as f:
                return [l for l in f.read().splitlines() if " RESPMOD " in l]
        wait_until(lambda: len(lines()) >= at_least, what=f"{at_least} RESPMOD lines in "
                   "c-icap's access log", details=lines)
        return lines()


class AnalyzeTest(IcapServerMixin, PssTestCase):
    def setUp(self):
        super().setUp()
        self.start_servers()

    def test_eicar_clean_and_versions(self):
        eicar = self.write("eicar.com", EICAR)
        clean = self.write("clean.txt", b"nothing to see here\n")
        r, by_input = self.analyze_json("--engine", "icap", eicar, clean, env=self.icap_env())
        self.assertEqual(r.code, 1, r)
        answered = self.respmods(at_least=2)
        a = by_input[eicar]["analysis"]
        self.assertEqual(a["result"], "malicious", r)
        # The name c-icap itself reports for it.
        own = self.cicap.respmod(EICAR)
        self.assertEqual([a["result_name"]], sorted(set(threat_names(own.headers))))
        self.assertEqual(a["result_name"], "Eicar-Test-Signature.UNOFFICIAL")
        self.assertEqual(a["metadata"]["threats"], [a["result_name"]])
        # Versions: the engine from OPTIONS' Service header, the definitions its ISTag.
        _, options = self.cicap.options()
        self.assertEqual(a["analysis_definition_version"], options["ISTag"].strip('"'))
        self.assertEqual(a["analysis_engine_version"], options["Service"].split()[0])
        self.assertEqual(a["product"], "ICAP antivirus service")
        b = by_input[clean]["analysis"]
        self.assertEqual(b["result"], "benign", r)
        self.assertEqual(b["analysis_definition_version"], a["analysis_definition_version"])
        # Allow: 204 was offered and used: the clean file came back as 204, EICAR as 200.
        self.assertEqual(sorted(l.rsplit(" ", 1)[1] for l in answered), ["200", "204"])

    def test_keep_alive_several_files_over_fewer_connections(self):
        files = [self.write(f"f{i}.txt", f"file number {i}\n".encode()) for i in range(6)]
        files.append(self.write("eicar.com", EICAR))
        r = self.pss("--log-level", "debug", "--engine", "icap", "analyze", "--concurrency", "1",
                     *files, env=self.icap_env())
        self.assertEqual(r.code, 1, r)
        self.assertEqual(len(r.stdout.splitlines()), len(files), r)
        opened = re.findall(r"opened connection \d+ to ICAP server", r.stderr)
        # c-icap answered each file
        self.assertEqual(len(self.respmods(at_least=len(files))), len(files))
        self.assertGreaterEqual(len(opened), 1, r.stderr)
        self.assertLess(len(opened), len(files), r.stderr)

    def test_connections_stay_within_the_cap(self):
        files = [self.write(f"g{i}.txt", f"file {i}\n".encode() * 1000) for i in range(8)]
        r = self.pss("--log-level", "debug", "--engine", "icap", "analyze", "--concurrency", "4",
                     *files, env={**self.icap_env(), "ICAP_MAX_CONNECTIONS": "2"})
        self.assertEqual(r.code, 0, r)
        self.assertEqual(r.stdout.count(": benign"), len(files), r)
        opened = re.findall(r"opened connection \d+ to ICAP server \S+ \((\d+) open, at most "
                            r"(\d+)\)", r.stderr)
        self.assertTrue(opened, r.stderr)
        self.assertTrue(all(int(n) <= 2 and cap == "2" for n, cap in opened), r.stderr)
        self.assertEqual(len(self.respmods(at_least=len(files))), len(files))

    def test_large_file_goes_on_after_100_continue(self):
        # 5 MiB: c-icap asks for a 1,024-byte preview; EICAR at the end is far beyond it, so a
        # detection proves the rest was sent after its 100 Continue.
        noise = bytes((i * 7919) % 251 for i in range(5 << 20))
        big = self.write("big.bin", noise)
        big_eicar = self.write("big-eicar.bin", noise + EICAR)
        r, by_input = self.analyze_json("--log-level", "debug", "--engine", "icap",
                                        "--concurrency", "1", big, big_eicar,
                                        env=self.icap_env())
        self.assertEqual(by_input[big]["analysis"]["result"], "benign", r)
        self.assertEqual(by_input[big_eicar]["analysis"]["result"], "malicious", r)
        self.assertEqual(by_input[big_eicar]["analysis"]["result_name"],
                         "Eicar-Test-Signature.UNOFFICIAL")
        continued = re.findall(r"100 Continue after a preview of 1024 bytes: sending the other "
                               r"(\d+)", r.stderr)
        self.assertEqual(sorted(int(n) for n in continued),
                         [len(noise) - 1024, len(noise) + len(EICAR) - 1024], r.stderr)

    def test_too_large_is_not_sent(self):
        engines = os.path.join(self.tmp, "engines")
        os.makedirs(os.path.join(engines, "small-icap"))
        with open(os.path.join(os.environ["PSS_SOURCE_ROOT"], "engines", "icap",
                               "engine.json")) as f:
            manifest = f.read()
        with open(os.path.join(engines, "small-icap", "engine.json"), "w") as f:
            f.write(manifest.replace('"max_size": "100M"', '"max_size": 1000')
                    .replace("ICAP_", "SMALL_ICAP_"))
        path = self.write("big.bin", b"x" * 1001)
        before = len(self.respmods())
        r, by_input = self.analyze_json("--engines-dir", engines, "--engine", "small-icap",
                                        path, env={"SMALL_ICAP_URL": self.cicap.url})
        a = by_input[path]["analysis"]
        self.assertEqual(a["result"], "unknown", r)
        self.assertIn("too large: 1001 bytes, over icap.max_size (1000 bytes)", a["error"])
        self.assertEqual(len(self.respmods()), before)

    def test_server_down_at_start_is_an_error_naming_it(self):
        url = self.cicap.url
        self.cicap.stop()
        r = self.pss("--engine", "icap", "analyze", self.write("x", b"x"), env={"ICAP_URL": url})
        self.assertEqual(r.code, 2, r)
        self.assertIn(f"ICAP server {url}: cannot connect: Connection refused", r.stderr)


class DaemonTest(WebhookTestCase):
    """engines/c-icap: pssupervise starts c-icap itself, from a config template naming {port},
    in front of the test's clamd (C_ICAP_CLAMD_SOCKET), restarts it when it dies, and stops it
    at the end."""

    def test_c_icap_started_by_the_supervisor(self):
        clamd = Clamd(self.tmp)
        self.addCleanup(clamd.stop)
        runtime = os.path.join(self.tmp, "c-icap-runtime")
        os.mkdir(runtime, 0o700)
        eicar = self.write("eicar.com", EICAR)
        big = self.write("big-eicar.bin", b"\0" * (2 << 20) + EICAR)
        clean = self.write("clean.txt", b"nothing to see here\n")
        r, by_input = self.analyze_json(
            "--log-level", "debug", "--engine", "c-icap", eicar, big, clean,
            env={"C_ICAP_CLAMD_SOCKET": clamd.socket, "C_ICAP_RUNTIME_DIR": runtime})
        self.assertEqual(r.code, 1, r)
        for path in (eicar, big):
            self.assertEqual(by_input[path]["analysis"]["result_name"],
                             "Eicar-Test-Signature.UNOFFICIAL", r)
        self.assertEqual(by_input[clean]["analysis"]["result"], "benign", r)
        port = re.search(r"using ICAP service icap://127\.0\.0\.1:(\d+)/avscan", r.stderr)
        self.assertIsNotNone(port, r.stderr)
        with open(os.path.join(runtime, "c-icap.conf")) as f:
            self.assertIn(f"Port 127.0.0.1:{port.group(1)}\n", f.read())
        pid = int(re.search(r"started c-icap \(pid (\d+)\)", r.stderr).group(1))
        self.assertRegex(r.stderr, rf"c-icap \(pid {pid}\) stopped: exited with status 0")
        self.assertGone(pid, "c-icap")
        self.assertEqual(live_pids("cmdline", runtime.encode()), [])

    def test_c_icap_killed_mid_run_is_restarted_and_no_file_is_lost(self):
        """A webhook on engines/c-icap; SIGKILL to the c-icap it started while c-icap holds
        scans (the test's clamd is stopped, SIGSTOP, before those bounties come and until the
        new c-icap exists: the kill surely lands mid-scan). c-icap is started again and every
        bounty gets one answer with its right verdict: those answered before the kill, those
        held during it (the killed c-icap's children finish them), and those sent once only
        the new c-icap is left."""
        clamd = Clamd(self.tmp)
        self.addCleanup(clamd.stop)
        self.addCleanup(os.kill, clamd.proc.pid, signal.SIGCONT)  # runs before its stop
        runtime = os.path.join(self.tmp, "c-icap-runtime")
        os.mkdir(runtime, 0o700)
        receiver = self.receiver()
        self.start("--concurrency", "4", engine="c-icap",
                   env={"C_ICAP_CLAMD_SOCKET": clamd.socket, "C_ICAP_RUNTIME_DIR": runtime})
        infected = {}

        def post(bids):
            for bid in bids:
                infected[bid] = bid % 4 == 1
                uri = EICAR_URI if infected[bid] else "data:,clean%20file%20" + str(bid)
                status, _, body = self.request(
                    body=self.bounty(uri=uri, bid=bid, response_url=receiver.url))
                self.assertEqual(status, 202, body)

        def c_icaps():
            """pids of the c-icap processes whose parent is our pssupervise."""
            return [p for p in children_of(self.proc.pid) if comm_of(p) == "c-icap"]

        def alive():
            self.assertIsNone(self.proc.poll(), f"the webhook exited\n{self.read_log()}")
            return True

        # Answered by the first c-icap.
        post(range(1, 9))
        receiver.wait(8)
        first = c_icaps()
        self.assertEqual(len(first), 1, self.read_log())
        # Held in c-icap: clamd answers nothing until the new c-icap exists. A scan is in
        # c-icap once its body is in a temp file of c-icap's TmpDir: the webhook's four at once.
        os.kill(clamd.proc.pid, signal.SIGSTOP)
        post(range(9, 25))
        wait_until(lambda: alive() and len(os.listdir(os.path.join(runtime, "tmp"))) >= 4,
                   what="four scans held in c-icap", details=self.read_log)
        self.assertEqual(len(receiver.answers), 8)
        # c-icap removes its shared memory and lock files only when it exits cleanly: after
        # SIGKILL, this test does (c-icap's children, which live on, do not).
        shm, locks = c_icap_leftovers([first[0]])
        self.addCleanup(remove_files, shm + locks)
        os.kill(first[0], signal.SIGKILL)
        second = wait_until(lambda: alive() and [p for p in c_icaps() if p != first[0]],
                            what="c-icap started again", details=self.read_log)
        self.assertEqual(len(second), 1)
        os.kill(clamd.proc.pid, signal.SIGCONT)
        receiver.wait(24)
        # Once nothing of the first c-icap is left (its children finish what they hold, then
        # exit), the new one alone answers.
        wait_until(lambda: not group_pids(first[0]), what="the first c-icap's children to exit",
                   details=lambda: str([(p, comm_of(p)) for p in group_pids(first[0])]))
        post(range(25, 33))
        answers = receiver.wait(32)

        by_bid = {}
        for headers, got in answers:
            by_bid.setdefault(int(headers["X-POLYSWARM-BOUNTY"]), []).append(got)
        self.assertEqual(sorted(by_bid), sorted(infected), answers)
        for bid, bad in infected.items():
            self.assertEqual(len(by_bid[bid]), 1, (bid, by_bid[bid]))  # one answer each
            got = by_bid[bid][0]
            if bad:
                self.assertEqual((got["verdict"], got["metadata"].get("malware_family")),
                                 ("malicious", "Eicar-Test-Signature.UNOFFICIAL"), (bid, got))
            else:
                self.assertEqual(got["verdict"], "benign", (bid, got))
        self.assertEqual(receiver.bad_signatures, 0)
        log = self.read_log()
        self.assertIn(f"c-icap (pid {first[0]}) killed by signal 9", log)
        self.assertIn(f"started c-icap (pid {second[0]})", log)
        self.assertEqual(c_icaps(), second, log)
        # SIGTERM: the webhook stops c-icap; nothing of either is left.
        self.proc.terminate()
        self.assertEqual(self.proc.wait(PATIENCE), 0, self.read_log())
        self.assertIn(f"c-icap (pid {second[0]}) stopped: exited with status 0", self.read_log())
        self.assertGone(second[0], "c-icap")
        self.assertEqual(live_pids("cmdline", runtime.encode()), [])


class UnsetUrlTest(PssTestCase):
    def test_without_its_url_the_engine_says_which_variable_to_set(self):
        env = {"ICAP_URL": ""}
        r = self.pss("--engine", "icap", "analyze", self.write("x", b"x"), env=env)
        self.assertEqual(r.code, 2, r)
        self.assertIn("no ICAP server to use: set ICAP_URL=icap://HOST:PORT/SERVICE", r.stderr)
        r = self.pss("--engine", "icap-kaspersky", "analyze", self.write("y", b"y"))
        self.assertEqual(r.code, 2, r)
        self.assertIn("set ICAP_KASPERSKY_URL=icap://", r.stderr)

    def test_engines_lists_every_icap_engine_without_a_server(self):
        r = self.pss("engines")
        for name in ["icap", "icap-eset", "icap-kaspersky", "icap-skyhigh", "icap-sophos",
                     "icap-symantec", "icap-trendmicro", "icap-withsecure"]:
            line = next((l for l in r.stdout.splitlines() if l.split()[:1] == [name]), None)
            self.assertIsNotNone(line, f"{name} not listed\n{r}")
            self.assertIn("no ICAP server to use", line)


class DownAndBackTest(IcapServerMixin, WebhookTestCase):
    """One webhook process: answers, then the server stops (unknown with the reason), then a
    new c-icap on the same port answers again. Each step waits for its answer."""

    def test_server_down_then_back(self):
        self.start_servers()
        port = self.cicap.port
        receiver = self.receiver()
        self.start(engine="icap", env=self.icap_env())

        def answer(bid, uri):
            status, _, body = self.request(body=self.bounty(uri=uri, bid=bid,
                                                            response_url=receiver.url))
            self.assertEqual(status // 100, 2, body)
            headers, got = receiver.wait(bid)[bid - 1]  # one at a time: in order
            self.assertEqual(headers["X-POLYSWARM-BOUNTY"], str(bid))
            return got

        first = answer(1, EICAR_URI)
        self.assertEqual(first["verdict"], "malicious", first)
        self.assertEqual(first["metadata"]["malware_family"], "Eicar-Test-Signature.UNOFFICIAL")

        self.cicap.stop()
        down = answer(2, CLEAN_URI)
        self.assertEqual(down["verdict"], "unknown", down)
        self.assertIn(f"ICAP server icap://127.0.0.1:{port}/avscan", down["metadata"]["error"])
        self.assertIn("Connection refused", down["metadata"]["error"])

        self.cicap = self.start_cicap(port=port, name="c-icap-again")
        back = answer(3, EICAR_URI)
        self.assertEqual(back["verdict"], "malicious", back)
        clean = answer(4, CLEAN_URI)
        self.assertEqual(clean["verdict"], "benign", clean)


if __name__ == "__main__":
    unittest.main()
