#!/usr/bin/python3
"""The result cache end to end: a one-shot engine whose scanner counts its runs, the real clamd,
and the real SQLite file: a second run scans nothing and prints the same verdicts; --rescan,
new definitions and other settings scan again; unknown answers are never kept; a corrupt file
is set aside and the scans go on; the process backend's workers share one cache."""
import glob
import hashlib
import http.server
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (EICAR, PATIENCE, SAMPLES, PssTestCase, RedisServer, fake_engine,  # noqa
                    runs_of)
from test_celery import CeleryTestCase, file_bounty  # noqa
from test_webhook import WebhookTestCase  # noqa


class CacheTestCase(PssTestCase):
    def setUp(self):
        super().setUp()
        self.cache = os.path.join(self.tmp, "cache", "results.sqlite")
        self.env["PSS_CACHE"] = self.cache
        self.engines = os.path.join(self.tmp, "engines")
        self.runs = os.path.join(self.tmp, "runs.log")
        self.defs = os.path.join(self.tmp, "defs", "signatures.txt")
        os.makedirs(os.path.dirname(self.defs))
        with open(self.defs, "w") as f:
            f.write("Eicar.Fake\n")
        # A definitions version from the files (custom:<digest>): the engine can be cached.
        # FAKE_MODE: a setting of the engine (it changes no answer here, but could).
        fake_engine(self.engines, runs=self.runs, definitions={"files": [self.defs]},
                    env={"MODE": "normal"})
        self.corpus = os.path.join(self.tmp, "corpus")
        os.makedirs(self.corpus)
        for i in range(12):
            data = (EICAR if i % 4 == 0 else b"clean file") + b" %d\n" % i  # all different
            with open(os.path.join(self.corpus, "f%02d" % i), "wb") as f:
                f.write(data)

    def analyze(self, *args, engine="fake", inputs=None):
        r = self.pss("--engines-dir", self.engines, "--engine", engine, *args, "analyze",
                     "--format", "json", *(inputs or [self.corpus]))
        self.assertIn(r.code, (0, 1, 2), r)  # 2: some answer is unknown
        return r, {l["input"]: l["analysis"] for l in r.json_lines()}

    @staticmethod
    def verdicts(answers):
        return {k: (a["result"], a.get("result_name")) for k, a in answers.items()}


class CorpusTest(CacheTestCase):
    def test_a_second_run_scans_nothing_and_prints_the_same_verdicts(self):
        r1, a1 = self.analyze()
        self.assertEqual(len(runs_of(self.runs)), 12)
        self.assertEqual(sum(a["result"] == "malicious" for a in a1.values()), 3)
        self.assertTrue(all("cached_at" not in a.get("metadata", {}) for a in a1.values()))
        r2, a2 = self.analyze()
        self.assertEqual(len(runs_of(self.runs)), 12, r2)  # no scanner ran
        self.assertEqual(self.verdicts(a1), self.verdicts(a2))
        self.assertTrue(all("cached_at" in a["metadata"] for a in a2.values()), a2)
        self.assertTrue(all(a["analysis_definition_version"].startswith("custom:")
                            for a in a2.values()))
        # Text output too: the same lines.
        t1 = self.pss("--engines-dir", self.engines, "--engine", "fake", "--cache", "off",
                      "analyze", self.corpus)
        t2 = self.pss("--engines-dir", self.engines, "--engine", "fake", "analyze", self.corpus)
        self.assertEqual(sorted(t1.stdout.splitlines()), sorted(t2.stdout.splitlines()))
        self.assertEqual(len(runs_of(self.runs)), 24)  # only the --cache off run scanned

    def test_rescan_new_definitions_and_other_settings_scan_again(self):
        self.analyze()
        self.analyze("--rescan")
        self.assertEqual(len(runs_of(self.runs)), 24)
        self.analyze()  # --rescan stored its answers: still 24
        self.assertEqual(len(runs_of(self.runs)), 24)
        with open(self.defs, "a") as f:
            f.write("Another.Signature\n")
        _, a = self.analyze()
        self.assertEqual(len(runs_of(self.runs)), 36)
        versions = {x["analysis_definition_version"] for x in a.values()}
        self.assertEqual(len(versions), 1)
        # A setting of the engine is part of the key; where its folders are is not.
        r = self.pss("--engines-dir", self.engines, "--engine", "fake", "analyze", self.corpus,
                     env={"FAKE_MODE": "paranoid"})
        self.assertEqual(len(runs_of(self.runs)), 48, r)
        r = self.pss("--engines-dir", self.engines, "--engine", "fake", "analyze", self.corpus,
                     env={"FAKE_MODE": "paranoid", "FAKE_DATA_HOME": self.tmp,
                          "FAKE_CACHE_HOME": os.path.join(self.tmp, "elsewhere")})
        self.assertEqual(len(runs_of(self.runs)), 48, r)

    def test_unknown_answers_are_never_kept(self):
        bad = os.path.join(self.corpus, "garbage")
        with open(bad, "wb") as f:
            f.write(b"GARBAGE\n")  # the fake scanner prints nothing a rule matches: unknown
        _, a1 = self.analyze()
        self.assertEqual(a1[bad]["result"], "unknown")
        _, a2 = self.analyze()
        self.assertEqual(a2[bad]["result"], "unknown")
        self.assertEqual(runs_of(self.runs).count(bad), 2)
        self.assertEqual(len(runs_of(self.runs)), 14)

    def test_the_process_backends_workers_share_the_cache(self):
        r1 = self.pss("--engines-dir", self.engines, "--engine", "fake", "analyze",
                      "--backend", "process", "--concurrency", "2", "--format", "json",
                      self.corpus)
        self.assertEqual(len(runs_of(self.runs)), 12, r1)
        r2 = self.pss("--engines-dir", self.engines, "--engine", "fake", "analyze",
                      "--backend", "process", "--concurrency", "2", "--format", "json",
                      self.corpus)
        self.assertEqual(len(runs_of(self.runs)), 12, r2)
        a2 = {l["input"]: l["analysis"] for l in r2.json_lines()}
        self.assertEqual(len(a2), 12)
        self.assertTrue(all("cached_at" in a["metadata"] for a in a2.values()), r2)
        # ...and with the local backend: one cache for both.
        self.analyze()
        self.assertEqual(len(runs_of(self.runs)), 12)


class RobustnessTest(CacheTestCase):
    def test_a_corrupt_cache_file_is_set_aside_and_the_scans_go_on(self):
        os.makedirs(os.path.dirname(self.cache))
        with open(self.cache, "wb") as f:
            f.write(b"this is not a database" * 300)
        r, a = self.analyze()
        self.assertEqual(len(a), 12, r)
        self.assertIn("set aside", r.stderr)
        aside = glob.glob(self.cache + ".corrupt-*")
        self.assertEqual(len(aside), 1, r)
        self.analyze()
        self.assertEqual(len(runs_of(self.runs)), 12)  # the new cache works

    def test_a_cache_that_cannot_be_made_is_a_warning_not_a_failure(self):
        blocker = os.path.join(self.tmp, "a-file")
        with open(blocker, "w") as f:
            f.write("x")
        r, a = self.analyze("--cache", os.path.join(blocker, "results.sqlite"))
        self.assertEqual(len(a), 12, r)
        self.assertIn("scanning without a cache", r.stderr)

    def test_a_bad_ttl_is_an_error_naming_it(self):
        r = self.pss("--engines-dir", self.engines, "--engine", "fake", "--cache-ttl", "soon",
                     "analyze", self.corpus)
        self.assertEqual(r.code, 2, r)
        self.assertIn("--cache-ttl: 'soon' is not a duration", r.stderr)
        self.assertEqual(runs_of(self.runs), [])


class RedisCacheTest(CacheTestCase):
    def setUp(self):
        super().setUp()
        self.redis = RedisServer(self.tmp)
        self.addCleanup(self.redis.stop)
        self.env["PSS_CACHE"] = self.redis.url

    def test_hosts_sharing_one_redis_scan_each_artifact_once(self):
        _, a1 = self.analyze()
        self.assertEqual(len(runs_of(self.runs)), 12)
        # "Another host": its own SQLite default elsewhere, the process backend's workers.
        self.env["HOME"] = os.path.join(self.tmp, "other-home")
        r2 = self.pss("--engines-dir", self.engines, "--engine", "fake", "analyze",
                      "--backend", "process", "--concurrency", "2", "--format", "json",
                      self.corpus)
        a2 = {l["input"]: l["analysis"] for l in r2.json_lines()}
        self.assertEqual(len(runs_of(self.runs)), 12, r2)
        self.assertEqual(self.verdicts(a1), self.verdicts(a2))
        self.assertTrue(all("cached_at" in a["metadata"] for a in a2.values()), r2)
        keys = self.redis.command("KEYS", "pss:result:*").split()
        self.assertEqual(len(keys), 12, keys)

    def test_redis_down_scans_go_on_and_it_is_used_again_when_back(self):
        self.redis.stop()
        r, a = self.analyze()
        self.assertEqual(len(a), 12, r)
        self.assertEqual(len(runs_of(self.runs)), 12)
        self.assertIn(f"result cache redis://127.0.0.1:{self.redis.port}/0", r.stderr)
        self.assertIn("scans go on", r.stderr)
        self.redis.start()
        self.analyze()
        self.assertEqual(len(runs_of(self.runs)), 24)  # stored this time
        self.analyze()
        self.assertEqual(len(runs_of(self.runs)), 24)


class CeleryCacheTest(CeleryTestCase):
    def test_two_workers_sharing_one_redis_cache_scan_each_artifact_once(self):
        self.engines = os.path.join(self.tmp, "engines")
        self.scans = os.path.join(self.tmp, "scans")
        defs = self.write("defs/signatures.txt", b"Eicar.Fake\n")
        fake_engine(self.engines, name="fake", runs=self.scans, definitions={"files": [defs]})
        cache = {"PSS_CACHE": self.redis.url[:-1] + "1"}  # its own database on the same Redis
        for _ in range(2):
            self.start_worker("--concurrency", "2", engine="fake", env=cache)
        paths = [self.write(f"a{i}.bin", (EICAR if i % 3 == 0 else b"clean") + b" %d" % i)
                 for i in range(10)]
        # Each artifact once, answered, then each again (to whichever worker takes it).
        first = [self.send(file_bounty(p, i), queue="fake").get(timeout=PATIENCE)
                 for i, p in enumerate(paths)]
        self.assertEqual(len(runs_of(self.scans)), 10)
        second = [self.send(file_bounty(p, 100 + i), queue="fake").get(timeout=PATIENCE)
                  for i, p in enumerate(paths)]
        self.assertEqual(len(runs_of(self.scans)), 10)  # no scanner ran for the second round
        self.assertEqual([a["result"] for a in first], [a["result"] for a in second])
        self.assertEqual(sum(a["result"] == "malicious" for a in second), 4)
        self.assertTrue(all("cached_at" in a["metadata"] for a in second), second)
        self.assertFalse(any("cached_at" in a.get("metadata", {}) for a in first), first)


class ClamdTest(CacheTestCase):
    def test_clamav_answers_are_kept_under_its_database_digest(self):
        _, a1 = self.analyze(engine="clamav", inputs=[SAMPLES])
        _, a2 = self.analyze(engine="clamav", inputs=[SAMPLES])
        self.assertEqual(self.verdicts(a1), self.verdicts(a2))
        self.assertTrue(all("cached_at" in a["metadata"] for a in a2.values()), a2)
        self.assertTrue(all("cached_at" not in a.get("metadata", {}) for a in a1.values()))


class Origin:
    """A loopback HTTP server with one artifact, counting its downloads."""
    def __init__(self, body):
        self.downloads = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.downloads += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/artifact"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class WebhookCacheTest(WebhookTestCase):
    def test_the_same_artifact_twice_is_downloaded_once(self):
        self.env["PSS_CACHE"] = os.path.join(self.tmp, "results.sqlite")
        origin = Origin(EICAR)
        self.addCleanup(origin.close)
        recv = self.receiver()
        self.start()
        sha256 = hashlib.sha256(EICAR).hexdigest()
        for bid in (1, 2):
            status, _, _ = self.request("/", self.bounty(uri=origin.url, response_url=recv.url,
                                                         bid=bid, sha256=sha256))
            self.assertEqual(status, 202)
            answers = recv.wait(bid)
            self.assertEqual(answers[-1][1]["verdict"], "malicious", answers)
        self.assertEqual(origin.downloads, 1)
        m = self.metrics()
        self.assertIn('pss_cache_lookups_total{engine="clamav",result="hit"} 1', m)
        self.assertIn('pss_cache_lookups_total{engine="clamav",result="miss"} 1', m)
        self.assertEqual(answers[0][1]["metadata"]["malware_family"],
                         answers[1][1]["metadata"]["malware_family"])


if __name__ == "__main__":
    unittest.main()
