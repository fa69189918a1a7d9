#!/usr/bin/python3
"""`pssupervise analyze` end to end, against a real clamd (started by pssupervise or by us)."""
import base64
import hashlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (BINARY, EICAR, MARKER, PATIENCE, SAMPLES, Clamd, PssTestCase,  # noqa: E402
                    free_port, live_pids, wait_until)


class SamplesTest(PssTestCase):
    def test_samples_folder_text(self):
        r = self.pss("analyze", SAMPLES)
        self.assertEqual(r.code, 1, r)  # something malicious
        lines = r.stdout.splitlines()
        # Stable, sorted order; one line per artifact.
        names = [l.split(": ", 1)[0] for l in lines]
        self.assertEqual(names, sorted(names), r)
        out = {os.path.basename(l.split(": ", 1)[0]): l.split(": ", 1)[1] for l in lines}
        self.assertEqual(out["eicar.com"], "malicious Eicar-Test-Signature")
        self.assertEqual(out["eicar.zip"], "malicious Eicar-Test-Signature")
        self.assertEqual(out["hello.txt"], "benign")
        self.assertEqual(out["hello.sh"], "benign")
        self.assertEqual(out["test-signature.txt"], "malicious PSS.Test.Marker-7f3a")
        self.assertNoClamdLeft()

    def test_json_format(self):
        r, by_input = self.analyze_json(os.path.join(SAMPLES, "eicar.com"),
                                        os.path.join(SAMPLES, "hello.txt"))
        self.assertEqual(r.code, 1, r)
        eicar = by_input[os.path.join(SAMPLES, "eicar.com")]
        self.assertEqual(set(eicar), {"input", "engine", "bounty", "analysis"})
        a = eicar["analysis"]
        self.assertEqual(a["result"], "malicious")
        self.assertEqual(a["result_name"], "Eicar-Test-Signature")
        self.assertEqual(a["product"], "ClamAV")
        self.assertEqual(a["vendor"], "Cisco Talos")
        self.assertEqual(a["bid"], 999900000000000000)
        self.assertRegex(a["analysis_engine_version"], r"^\d+\.\d+\.\d+")
        # Our test DB has no definition number: the version is a digest of its files.
        self.assertRegex(a["analysis_definition_version"], r"^custom:[0-9a-f]{12}$")
        b = eicar["bounty"]
        self.assertEqual(b["sha256"],
                         "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f")
        self.assertEqual(b["mimetype"], "text/plain")
        self.assertEqual(b["artifact_type"], "file")
        self.assertTrue(b["artifact_uri"].startswith("file:///"))
        hello = by_input[os.path.join(SAMPLES, "hello.txt")]["analysis"]
        self.assertEqual(hello["result"], "benign")
        self.assertNotIn("result_name", hello)

    def test_same_artifact_same_id(self):
        copy = self.write("copy-of-eicar", EICAR)
        r, by_input = self.analyze_json(os.path.join(SAMPLES, "eicar.com"), copy)
        ids = {l["bounty"]["id"] for l in by_input.values()}
        self.assertEqual(len(ids), 1, r)

    def test_verbose_layout(self):
        r = self.pss("analyze", "-v", os.path.join(SAMPLES, "eicar.com"))
        self.assertEqual(r.code, 1, r)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"^-+ .*eicar\.com -+$")
        self.assertEqual(lines[1], "Bounty: {")
        text = r.stdout
        bounty_json = text[text.index("Bounty: ") + 8:text.index("Analysis: ")]
        analysis_json = text[text.index("Analysis: ") + 10:]
        self.assertEqual(json.loads(bounty_json)["artifact_type"], "file")
        analysis = json.loads(analysis_json)
        self.assertEqual(analysis["result"], "malicious")
        # The documented key order: bid first, then result, result_name, product, vendor.
        self.assertEqual(list(analysis)[:5], ["bid", "result", "result_name", "product", "vendor"])

    def test_clean_exit_zero(self):
        r = self.pss("analyze", os.path.join(SAMPLES, "hello.txt"))
        self.assertEqual(r.code, 0, r)

    def test_empty_file(self):
        empty = self.write("empty", b"")
        r, by_input = self.analyze_json(empty)
        self.assertEqual(r.code, 0, r)
        self.assertEqual(by_input[empty]["analysis"]["result"], "benign")
        self.assertEqual(by_input[empty]["bounty"]["mimetype"], "inode/x-empty")  # libmagic 5.44

    def test_eicar_with_trailing_bytes_and_nested_zip(self):
        path = self.write("eicar-plus", EICAR + b"\n\n")
        r, by_input = self.analyze_json(path)
        self.assertEqual(by_input[path]["analysis"]["result"], "malicious", r)


class NamesTest(PssTestCase):
    NAMES = ["with space", "quote'single", 'quote"double', "dollar$HOME", "new\nline",
             "caf\u00e9-\u65e5\u672c", "-leading-dash", "back\\slash", "semi;colon&amp"]

    def test_awkward_file_names(self):
        paths = [self.write(os.path.join("names", n), EICAR) for n in self.NAMES]
        r, by_input = self.analyze_json("--", *paths)
        self.assertEqual(r.code, 1, r)
        self.assertEqual(len(by_input), len(paths), r)
        for p in paths:
            self.assertEqual(by_input[p]["analysis"]["result"], "malicious", p)

    def test_directory_with_awkward_names(self):
        for n in self.NAMES:
            self.write(os.path.join("dir", n), b"harmless " + n.encode())
        r = self.pss("analyze", os.path.join(self.tmp, "dir"))
        self.assertEqual(r.code, 0, r)
        # One line each; the newline in a name is escaped, not a line break.
        self.assertEqual(len(r.stdout.splitlines()), len(self.NAMES), r)
        self.assertIn("new\\nline: benign", r.stdout)

    def test_non_utf8_name(self):
        d = os.path.join(self.tmp, "raw").encode()
        os.mkdir(d)
        name = os.path.join(d, b"bad-\xff\xfe-name")
        with open(name, "wb") as f:
            f.write(EICAR)
        r = self.pss("analyze", "--format", "json", os.path.join(self.tmp, "raw"))
        self.assertEqual(r.code, 1, r)
        self.assertEqual(r.json_lines()[0]["analysis"]["result"], "malicious")


class InputsTest(PssTestCase):
    def test_stdin(self):
        r, by_input = self.analyze_json("-", stdin=EICAR)
        self.assertEqual(r.code, 1, r)
        self.assertEqual(by_input["-"]["analysis"]["result"], "malicious")

    def test_data_uris(self):
        b64 = "data:application/octet-stream;base64," + base64.b64encode(EICAR).decode()
        pct = "data:," + "".join(f"%{c:02X}" for c in MARKER)
        r, by_input = self.analyze_json(b64, pct)
        self.assertEqual(r.code, 1, r)
        self.assertEqual(by_input[b64]["analysis"]["result_name"], "Eicar-Test-Signature")
        self.assertEqual(by_input[pct]["analysis"]["result_name"], "PSS.Test.Marker-7f3a")

    def test_file_uri(self):
        path = self.write("x y.bin", EICAR)
        uri = "file://" + path.replace(" ", "%20")
        r, by_input = self.analyze_json(uri)
        self.assertEqual(by_input[uri]["analysis"]["result"], "malicious", r)

    def test_http_on_loopback(self):
        body = {"/eicar": EICAR, "/clean": b"nothing to see"}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                data = body.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            base = f"http://127.0.0.1:{server.server_address[1]}"
            r, by_input = self.analyze_json(base + "/eicar", base + "/clean", base + "/missing",
                                            env={"no_proxy": "127.0.0.1"})
        finally:
            server.shutdown()
            server.server_close()
        self.assertEqual(r.code, 2, r)  # the 404 is an error; the others are answered
        self.assertEqual(by_input[base + "/eicar"]["analysis"]["result"], "malicious")
        self.assertEqual(by_input[base + "/clean"]["analysis"]["result"], "benign")
        missing = by_input[base + "/missing"]["analysis"]
        self.assertEqual(missing["result"], "unknown")
        self.assertIn("404", missing["error"])
        self.assertEqual(missing["comments"], "SKIPPED:CANNOT-FETCH")

    def test_missing_file_others_still_scanned(self):
        missing = os.path.join(self.tmp, "does-not-exist")
        r, by_input = self.analyze_json(missing, os.path.join(SAMPLES, "eicar.com"))
        self.assertEqual(r.code, 2, r)
        self.assertEqual(by_input[os.path.join(SAMPLES, "eicar.com")]["analysis"]["result"],
                         "malicious")
        err = by_input[missing]["analysis"]
        self.assertEqual(err["result"], "unknown")
        self.assertIn("No such file or directory", err["error"])
        self.assertIn("does-not-exist", err["error"])

    def test_missing_file_text(self):
        r = self.pss("analyze", os.path.join(self.tmp, "nope"))
        self.assertEqual(r.code, 2, r)
        self.assertIn("nope: unknown (", r.stdout)

    def test_url_artifact_type(self):
        url = "http://example.invalid/" + MARKER.decode()
        r, by_input = self.analyze_json("-t", "url", url)
        self.assertEqual(by_input[url]["bounty"]["artifact_type"], "url", r)
        # The URL's own text is the artifact: it carries the test signature.
        self.assertEqual(by_input[url]["analysis"]["result"], "malicious", r)


class BountyFileTest(PssTestCase):
    def bounty(self, name, **fields):
        b = {"id": 42, "artifact_type": "FILE",
             "artifact_uri": "data:;base64," + base64.b64encode(EICAR).decode(),
             "rules": {"min_allowed_bid": 100, "max_allowed_bid": "1000"}}
        b.update(fields)
        return self.write(name, json.dumps(b).encode())

    def test_bounty_file(self):
        path = self.bounty("b.json")
        r, by_input = self.analyze_json("-t", "bounty", path)
        self.assertEqual(r.code, 1, r)
        line = by_input[path]
        self.assertEqual(line["bounty"]["id"], 42)
        self.assertEqual(line["analysis"]["result"], "malicious")
        self.assertEqual(line["analysis"]["bid"], 1000)  # bid within the bounty's rules

    def test_old_field_names(self):
        path = self.write("old.json", json.dumps({
            "guid": "7", "artifact_url": "data:," + MARKER.decode()}).encode())
        r, by_input = self.analyze_json("-t", "bounty", path)
        self.assertEqual(by_input[path]["bounty"]["id"], 7, r)
        self.assertEqual(by_input[path]["analysis"]["result_name"], "PSS.Test.Marker-7f3a")

    def test_expired_bounty_unknown(self):
        path = self.bounty("expired.json", expiration="2001-01-01T00:00:00+00:00")
        r, by_input = self.analyze_json("-t", "bounty", path)
        a = by_input[path]["analysis"]
        self.assertEqual(a["result"], "unknown", r)
        self.assertIn("expired", a["error"])
        self.assertEqual(a["bid"], 0)

    def test_sha256_mismatch(self):
        path = self.bounty("sha.json", sha256="0" * 64)
        r, by_input = self.analyze_json("-t", "bounty", path)
        self.assertIn("sha256 mismatch", by_input[path]["analysis"]["error"], r)

    def test_malformed_bounty_does_not_stop_the_others(self):
        bad = self.write("bad.json", b"{not json")
        no_uri = self.write("no-uri.json", b'{"id": 1}')
        good = self.bounty("good.json")
        r, by_input = self.analyze_json("-t", "bounty", bad, no_uri, good)
        self.assertEqual(r.code, 2, r)
        self.assertEqual(by_input[good]["analysis"]["result"], "malicious")
        self.assertIn("invalid bounty", by_input[bad]["analysis"]["error"])
        self.assertIn("artifact_uri", by_input[no_uri]["analysis"]["error"])


    def leftovers(self):
        """What analyze left in TMPDIR: its run directory and spooled files must be gone."""
        return [n for n in os.listdir(self.tmp) if n.startswith(("pssupervise-", "artifact-"))]

    def test_large_data_bounty_is_spooled_and_scanned_whole(self):
        # 5 MB whose only signature is at its very end, and the bounty's sha256 of all of it:
        # the scan must see every byte, decoded right, or the answer is another one.
        payload = bytes(range(256)) * (5_000_000 // 256) + MARKER
        uri = "data:application/octet-stream;base64," + base64.b64encode(payload).decode()
        sha = hashlib.sha256(payload).hexdigest()
        stand_in = f"data:...(spooled: {len(payload)} bytes)"
        for backend in ("local", "process"):
            with self.subTest(backend=backend):
                path = self.bounty(f"large-{backend}.json", artifact_uri=uri, sha256=sha)
                r, by_input = self.analyze_json("--backend", backend, "-t", "bounty", path)
                self.assertEqual(r.code, 1, r.stderr)
                line = by_input[path]
                self.assertEqual(line["analysis"]["result_name"], "PSS.Test.Marker-7f3a",
                                 line["analysis"])
                self.assertEqual(line["analysis"]["bid"], 1000)  # the bounty's rules held
                self.assertEqual(line["bounty"]["id"], 42)
                self.assertEqual(line["bounty"]["sha256"], sha)
                # The bounty printed names the spooled bytes, not 6.7 MB of base64.
                self.assertEqual(line["bounty"]["artifact_uri"], stand_in)
                self.assertEqual(self.leftovers(), [])
        r = self.pss("analyze", "-v", "-t", "bounty", path)
        self.assertEqual(r.code, 1, r.stderr)
        self.assertIn(f'"artifact_uri": "{stand_in}"', r.stdout)
        self.assertLess(len(r.stdout), 10000)

    def test_large_data_bounty_with_bad_base64_is_answered_as_a_small_one(self):
        good = base64.b64encode(bytes(100_000)).decode()
        large = self.bounty("bad-large.json",
                            artifact_uri="data:;base64," + good[:50_000] + "!" + good[50_001:])
        small = self.bounty("bad-small.json", artifact_uri="data:;base64,AAAA!AAA")
        r, by_input = self.analyze_json("-t", "bounty", large, small)
        self.assertEqual(r.code, 2, r.stderr)
        self.assertEqual(by_input[large]["analysis"]["error"],
                         "data: URI: invalid base64 at offset 50000: '!'")
        self.assertEqual(by_input[small]["analysis"]["error"],
                         "data: URI: invalid base64 at offset 4: '!'")
        self.assertEqual(self.leftovers(), [])


class ClamdTest(PssTestCase):
    def test_oversized_stream_is_unknown(self):
        big = self.write("big.bin", b"\0" * (2 * 1024 * 1024))
        r, by_input = self.analyze_json(big, os.path.join(SAMPLES, "eicar.com"),
                                        env={"CLAMAV_STREAM_MAX_LENGTH": "1M",
                                             "CLAMAV_TRANSFER": "instream"})
        self.assertEqual(r.code, 2, r)
        a = by_input[big]["analysis"]
        self.assertEqual(a["result"], "unknown")
        self.assertIn("INSTREAM size limit exceeded", a["error"])
        self.assertEqual(by_input[os.path.join(SAMPLES, "eicar.com")]["analysis"]["result"],
                         "malicious")

    def test_transfer_modes(self):
        inputs = [os.path.join(SAMPLES, n) for n in ("eicar.com", "eicar.zip", "hello.txt")]
        expected = ["malicious", "malicious", "benign"]
        for mode in ("auto", "instream", "fildes"):
            r = self.pss("--log-level", "info", "analyze", "--format", "json", *inputs,
                         env={"CLAMAV_TRANSFER": mode})
            self.assertEqual([l["analysis"]["result"] for l in r.json_lines()], expected, r)
            used = "INSTREAM" if mode == "instream" else "FILDES"
            self.assertIn(f"scanning by {used}", r.stderr)
        r = self.pss("analyze", inputs[0], env={"CLAMAV_TRANSFER": "carrier-pigeon"})
        self.assertEqual(r.code, 2, r)
        self.assertIn("CLAMAV_TRANSFER must be auto, instream or fildes", r.stderr)

    def test_tcp_uses_instream(self):
        port = free_port()
        clamd = Clamd(self.tmp, tcp_port=port)
        try:
            r = self.pss("--log-level", "info", "analyze", os.path.join(SAMPLES, "eicar.com"),
                         env={"CLAMD_HOST": "127.0.0.1", "CLAMD_PORT": str(port)})
            self.assertEqual(r.code, 1, r)
            self.assertIn("scanning by INSTREAM on tcp:127.0.0.1", r.stderr)
            r = self.pss("analyze", os.path.join(SAMPLES, "eicar.com"),
                         env={"CLAMD_HOST": "127.0.0.1", "CLAMD_PORT": str(port),
                              "CLAMAV_TRANSFER": "fildes"})
            self.assertEqual(r.code, 2, r)
            self.assertIn("needs a unix socket", r.stderr)
        finally:
            clamd.stop()

    def test_clamd_killed_mid_run_every_input_answered(self):
        n = 200
        for i in range(n):
            self.write(f"many/{i:03d}.txt", (EICAR if i % 10 == 0 else b"clean %d" % i))
        proc = subprocess.Popen([BINARY, "analyze", "--format", "json", "--concurrency", "2",
                                 os.path.join(self.tmp, "many")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env,
                                cwd=self.tmp)
        lines = []
        killed = []
        for raw in proc.stdout:
            lines.append(json.loads(raw))
            if len(lines) == 20 and not killed:
                pid = int(open(os.path.join(self.runtime, "clamd.pid")).read())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        err = proc.stderr.read().decode()
        proc.wait(PATIENCE)
        proc.stdout.close()
        proc.stderr.close()
        self.assertTrue(killed, "the run ended before clamd could be killed")
        self.assertEqual(len(lines), n, err)  # every input answered
        self.assertEqual(len({l["input"] for l in lines}), n)
        self.assertIn("restarting", err)
        # After the restart, scans work again: the last files got real verdicts.
        tail = [l["analysis"]["result"] for l in lines[-50:]]
        self.assertNotIn("unknown", tail, err)
        self.assertEqual(sum(l["analysis"]["result"] == "malicious" for l in lines[-50:]), 5)
        self.assertNoClamdLeft()

    def test_users_clamd_on_unix_socket(self):
        clamd = Clamd(self.tmp)
        try:
            r = self.pss("--log-level", "info", "analyze", "--format", "json",
                         os.path.join(SAMPLES, "eicar.com"), env={"CLAMD_SOCKET": clamd.socket})
            self.assertEqual(r.code, 1, r)
            self.assertEqual(r.json_lines()[0]["analysis"]["result"], "malicious")
            self.assertIn("using clamd at unix:" + clamd.socket, r.stderr)
            # Not ours: still running afterwards, and we started none.
            self.assertTrue(clamd.ping())
            self.assertFalse(os.path.exists(os.path.join(self.runtime, "clamd.sock")))
        finally:
            clamd.stop()

    def test_users_clamd_on_tcp(self):
        port = free_port()
        clamd = Clamd(self.tmp, tcp_port=port)
        try:
            r, by_input = self.analyze_json(os.path.join(SAMPLES, "eicar.zip"),
                                            env={"CLAMD_HOST": "127.0.0.1",
                                                 "CLAMD_PORT": str(port)})
            self.assertEqual(r.code, 1, r)
            self.assertEqual(by_input[os.path.join(SAMPLES, "eicar.zip")]["analysis"]["result"],
                             "malicious")
            self.assertTrue(clamd.ping())
        finally:
            clamd.stop()

    def test_users_clamd_not_answering(self):
        r = self.pss("analyze", os.path.join(SAMPLES, "hello.txt"),
                     env={"CLAMD_HOST": "127.0.0.1", "CLAMD_PORT": str(free_port())})
        self.assertEqual(r.code, 2, r)
        self.assertRegex(r.stderr, r"pssupervise: error: while starting engine clamav: "
                                   r"clamd at tcp:127\.0\.0\.1:\d+ does not answer PING")

    def test_clamd_missing(self):
        r = self.pss("analyze", os.path.join(SAMPLES, "hello.txt"),
                     env={"CLAMAV_PATH": "/nonexistent"})
        self.assertEqual(r.code, 2, r)
        self.assertIn("cannot start '/nonexistent/clamd'", r.stderr)

    def test_clamd_failing_to_start_shows_its_output(self):
        empty_db = os.path.join(self.tmp, "emptydb")
        os.mkdir(empty_db)
        r = self.pss("analyze", os.path.join(SAMPLES, "hello.txt"),
                     env={"CLAMAV_DATA_HOME": empty_db})
        self.assertEqual(r.code, 2, r)
        # Restarted with back-off, then given up on, with clamd's own words.
        self.assertRegex(r.stderr, r"while starting engine clamav: clamd died 5 times within "
                                   r"\d+ s; last: exited with status 1; its last output:")
        self.assertIn("No supported database files found", r.stderr)

    def test_unsafe_runtime_dir_refused(self):
        os.chmod(self.runtime, 0o755)
        r = self.pss("analyze", os.path.join(SAMPLES, "hello.txt"))
        self.assertEqual(r.code, 2, r)
        self.assertIn("CLAMAV_RUNTIME_DIR", r.stderr)
        self.assertIn("0755", r.stderr)

    def test_runtime_dir_unset_warns_and_cleans_up(self):
        env = dict(self.env)
        del env["CLAMAV_RUNTIME_DIR"]
        env.pop("XDG_RUNTIME_DIR", None)
        self.env = env
        r = self.pss("analyze", os.path.join(SAMPLES, "hello.txt"))
        self.assertEqual(r.code, 0, r)
        self.assertIn("CLAMAV_RUNTIME_DIR is not set", r.stderr)
        leftovers = [n for n in os.listdir(self.tmp) if n.startswith("pssupervise-")]
        self.assertEqual(leftovers, [], "private runtime/temp dirs must be removed on exit")

    def test_sigkill_of_pssupervise_leaves_no_clamd(self):
        for i in range(50):
            self.write(f"some/{i}", b"x" * 100000)
        proc = subprocess.Popen([BINARY, "analyze", "--concurrency", "1",
                                 os.path.join(self.tmp, "some")],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=self.env)
        proc.stdout.readline()
        pid = int(open(os.path.join(self.runtime, "clamd.pid")).read())
        proc.kill()
        proc.communicate(timeout=PATIENCE)
        self.assertGone(pid, "clamd of a killed pssupervise")

    def test_sigterm_stops_clamd(self):
        for i in range(50):
            self.write(f"some/{i}", b"x" * 100000)
        proc = subprocess.Popen([BINARY, "analyze", "--concurrency", "1",
                                 os.path.join(self.tmp, "some")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env)
        proc.stdout.readline()  # scanning has started
        pid = int(open(os.path.join(self.runtime, "clamd.pid")).read())
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=PATIENCE)
        self.assertEqual(proc.returncode, 128 + signal.SIGTERM)
        self.assertGone(pid, "clamd of a pssupervise stopped by SIGTERM")


class ProgressTest(PssTestCase):
    def test_progress_line_on_a_terminal(self):
        import pty
        for i in range(12):
            self.write(f"p/{i:02d}", b"clean %d" % i)
        master, slave = pty.openpty()
        proc = subprocess.Popen([BINARY, "analyze", os.path.join(self.tmp, "p")],
                                stdout=subprocess.PIPE, stderr=slave, env=self.env)
        os.close(slave)
        out, _ = proc.communicate(timeout=PATIENCE)
        err = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
        os.close(master)
        self.assertEqual(proc.returncode, 0)
        self.assertEqual(len(out.splitlines()), 12)
        self.assertIn(b"[12/12]", err)
        self.assertIn(b"0 malicious, 0 errors", err)
        self.assertTrue(err.endswith(b"\r\x1b[K"), err[-40:])  # cleared at the end

    def test_no_progress_when_not_a_terminal(self):
        for i in range(12):
            self.write(f"p/{i:02d}", b"clean %d" % i)
        r = self.pss("analyze", os.path.join(self.tmp, "p"))
        self.assertNotIn("[12/12]", r.stderr)


class CallbacksTest(PssTestCase):
    def test_the_callers_callbacks_run_once_per_bounty(self):
        events = os.path.join(self.tmp, "events")
        script = self.write("cb.sh", b'{ printf "%s " "$PSS_EVENT"; cat; } >> ' +
                            events.encode() + b"\n")
        missing = os.path.join(self.tmp, "missing.bin")
        r = self.pss("analyze", "--on-success", f"/bin/sh {script}",
                     "--on-error", f"/bin/sh {script}", SAMPLES, missing)
        self.assertEqual(r.code, 2, r)
        with open(events) as f:
            got = [(l.split(" ", 1)[0], json.loads(l.split(" ", 1)[1])) for l in f]
        self.assertEqual(len(got), len(os.listdir(SAMPLES)) + 1)
        by_input = {e["input"]: (kind, e) for kind, e in got}
        kind, e = by_input[os.path.join(SAMPLES, "eicar.com")]
        self.assertEqual((kind, e["analysis"]["result"]), ("success", "malicious"))
        self.assertEqual(e["engine"], "clamav")
        self.assertEqual(e["bounty"]["artifact_uri"],
                         "file://" + os.path.join(SAMPLES, "eicar.com"))
        kind, e = by_input[missing]
        self.assertEqual(kind, "error")
        self.assertIn("No such file or directory", e["error"])

    def test_a_callback_past_its_timeout_is_stopped_sigterm_first(self):
        # It records the SIGTERM it gets, then would run on: the answer is unchanged, the
        # command and what it left are gone, and the log says why.
        termed = os.path.join(self.tmp, "termed")
        script = self.write("cb.sh", b"trap 'echo term > " + termed.encode() +
                            b"; exit 0' TERM\nsleep 1000 & wait\n")
        r = self.pss("analyze", "--on-success", f"/bin/sh {script} callback-marker",
                     "--callback-timeout", "1", os.path.join(SAMPLES, "eicar.com"))
        self.assertEqual(r.code, 1, r)
        self.assertIn("malicious", r.stdout)
        self.assertIn("timed out after 1 s", r.stderr)
        self.assertTrue(os.path.exists(termed), "the callback got no SIGTERM first")
        wait_until(lambda: not live_pids("cmdline", b"callback-marker"),
                   what="the callback to be gone")


class CliTest(PssTestCase):
    def test_unknown_engine(self):
        r = self.pss("--engine", "nosuch", "analyze", os.path.join(SAMPLES, "hello.txt"))
        self.assertEqual(r.code, 2, r)
        self.assertIn("unknown engine 'nosuch' (known: c-icap, clamav, clamscan", r.stderr)

    def test_engines_lists_clamav(self):
        # Wine engines keep their prefixes in the run's shared state dir (created once).
        state = os.path.join(os.environ.get("PSS_WINE_STATE", self.tmp), "xdg")
        r = self.pss("engines", env={"XDG_STATE_HOME": state}, timeout=600)
        self.assertEqual(r.code, 0, r)
        self.assertRegex(r.stdout, r"clamav\s+clamd\s+native\s+ClamAV \(Cisco Talos\)")

    def test_help_and_bad_option(self):
        self.assertEqual(self.pss("--help").code, 0)
        r = self.pss("analyze", "--format", "xml", "x")
        self.assertEqual(r.code, 2, r)
        self.assertIn("xml", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
