#!/usr/bin/python3
"""`pssupervise worker` and `analyze --backend celery` against a real redis-server and
Debian's python3-celery (imported here: this runs under /usr/bin/python3): a stock Python
client gets verdicts from the C++ worker, failures raise in Python, our client talks to our
worker, the worker fetches from no private address and reads local files only where allowed,
a killed worker loses nothing, a task longer than the visibility timeout runs once, a Redis
restart loses nothing, SIGTERM drains."""
import gc
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest
import uuid
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (BINARY, EICAR, PATIENCE, SAMPLES, PssTestCase, RedisServer,  # noqa: E402
                    children_of, fake_engine, live_pids, wait_until)

import redis  # noqa: E402
from celery import Celery  # noqa: E402
from celery.exceptions import NotRegistered, TaskRevokedError  # noqa: E402
from kombu import Connection  # noqa: E402



# A Python Celery worker answering "pssupervise.analyze" by itself: to show that the tasks our
# client sends are read by Python (args, headers, properties) as its own.
PY_WORKER_APP = r"""
import os
from celery import Celery

app = Celery("pyworker", broker=os.environ["PSS_T_BROKER"], backend=os.environ["PSS_T_RESULTS"])

@app.task(name="pssupervise.analyze")
def analyze(bounty):
    bad = bounty["artifact_uri"].endswith("eicar.com")
    return {"result": "malicious" if bad else "benign",
            "result_name": "Py.Worker.Saw.%d" % bounty["id"] if bad else None,
            "product": "Python worker"}
"""


def file_bounty(path, bid=1):
    return {"id": bid, "artifact_type": "file", "artifact_uri": "file://" + path}


def uri_bounty(uri, bid=1):
    return {"id": bid, "artifact_type": "file", "artifact_uri": uri}


class LoopbackServer:
    """An HTTP server on 127.0.0.1 that serves EICAR at every path and records each request
    it gets: a refused fetch must leave `requests` empty."""

    def __init__(self):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(EICAR)))
                self.end_headers()
                self.wfile.write(EICAR)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class CeleryTestCase(PssTestCase):
    @property
    def broker_url(self):
        """The broker; results are always on self.redis (test_celery_amqp.py: RabbitMQ)."""
        return self.redis.url

    def setUp(self):
        super().setUp()
        self.redis = RedisServer(self.tmp)
        self.app = Celery("pss-test", broker=self.broker_url, backend=self.redis.url)
        self.app.conf.broker_connection_retry_on_startup = True
        self.workers = []
        self.engines = None

    def tearDown(self):
        for w in self.workers:
            if w.poll() is None:
                w.kill()
                w.wait(30)
        gc.collect()  # AsyncResult.__del__ talks to Redis: let it while Redis is up
        self.app.close()
        self.redis.stop()
        super().tearDown()

    def slow_engine(self):
        """The fake one-shot engine `slow`: its scanner sleeps $FAKE_SECONDS per file, or waits
        for the file $FAKE_UNTIL names, and logs each run to self.scans."""
        self.engines = os.path.join(self.tmp, "engines")
        self.scans = os.path.join(self.tmp, "scans")
        fake_engine(self.engines, name="slow", runs=self.scans)

    def start_worker(self, *args, engine="clamav", env=None, log="info", files=None):
        """A worker that may read local files under `files` (default: the test's temp dir and
        the samples, which the tests name by path or file://)."""
        cmd = [BINARY, "--log-level", log]
        if self.engines:
            cmd += ["--engines-dir", self.engines]
        cmd += ["--engine", engine, "worker", "--broker", self.broker_url,
                "--result-backend", self.redis.url, *args]
        for d in (self.tmp, SAMPLES) if files is None else files:
            cmd += ["--allow-file-prefix", d]
        e = dict(self.env)
        e.update(env or {})
        errlog = open(os.path.join(self.tmp, f"worker{len(self.workers)}.log"), "wb")
        w = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errlog, env=e, cwd=self.tmp)
        errlog.close()  # the worker has its own copy
        w.log_path = errlog.name
        self.workers.append(w)
        self.wait_for_log(w, "consuming queue")
        return w

    def start_python_worker(self, queue):
        with open(os.path.join(self.tmp, "pyworker.py"), "w") as f:
            f.write(PY_WORKER_APP)
        e = dict(self.env, PSS_T_BROKER=self.broker_url, PSS_T_RESULTS=self.redis.url,
                 PYTHONPATH=self.tmp)
        errlog = open(os.path.join(self.tmp, f"pyworker{len(self.workers)}.log"), "wb")
        w = subprocess.Popen(["/usr/bin/python3", "-m", "celery", "-A", "pyworker", "worker",
                              "-Q", queue, "-c", "1", "-P", "solo", "--without-gossip",
                              "--without-mingle", "--without-heartbeat", "-l", "info"],
                             stdout=errlog, stderr=subprocess.STDOUT, env=e, cwd=self.tmp)
        errlog.close()
        w.log_path = errlog.name
        self.workers.append(w)
        self.wait_for_log(w, " ready.")
        return w

    def check_our_client_with_a_python_worker(self, queue):
        self.start_python_worker(queue)
        r = self.pss("analyze", "--backend", "celery", "--broker", self.broker_url,
                     "--result-backend", self.redis.url, "--queue", queue,
                     os.path.join(SAMPLES, "eicar.com"), os.path.join(SAMPLES, "hello.txt"))
        self.assertEqual(r.code, 1, r)
        self.assertIn("eicar.com: malicious Py.Worker.Saw.", r.stdout)
        self.assertIn("hello.txt: benign", r.stdout)

    def wait_for_log(self, worker, text, timeout=PATIENCE):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(worker.log_path, errors="replace") as f:
                if text in f.read():
                    return
            if worker.poll() is not None:
                break
            time.sleep(0.05)
        with open(worker.log_path, errors="replace") as f:
            self.fail(f"worker never logged {text!r}:\n{f.read()}")

    def send(self, bounty, queue="clamav", **kw):
        return self.app.send_task("pssupervise.analyze", args=[bounty], queue=queue, **kw)

    def wait_until(self, predicate, timeout=PATIENCE, what="condition", details=None):
        wait_until(predicate, timeout=timeout, what=what, details=details)

    def queue_mixed_tasks(self, queue, n=12):
        """n tasks for the slow engine, every third one EICAR; their ids."""
        paths = [self.write(f"f{i}.txt", EICAR if i % 3 == 0 else b"clean %d" % i)
                 for i in range(n)]
        return [self.send(file_bounty(p, i), queue=queue).id for i, p in enumerate(paths)]

    def assert_mixed_tasks_answered(self, ids):
        """Each task of queue_mixed_tasks() stored SUCCESS with its own verdict."""
        self.wait_until(lambda: all(self.stored(i) for i in ids), what="all results")
        for n, task_id in enumerate(ids):
            meta = self.stored(task_id)
            self.assertEqual(meta["status"], "SUCCESS", meta)
            want = "malicious" if n % 3 == 0 else "benign"
            self.assertEqual(meta["result"]["result"], want, meta)

    def stored(self, task_id):
        v = self.redis.command("GET", f"celery-task-meta-{task_id}")
        return json.loads(v) if v else None

    def read_log(self, worker):
        with open(worker.log_path, errors="replace") as f:
            return f.read()

    def loopback_server(self):
        server = LoopbackServer()
        self.addCleanup(server.close)
        return server

    def policy_dirs(self):
        """(allowed/ holding eicar.com, outside/eicar.com beside it, a symlink in allowed/ to
        it)"""
        allowed = os.path.join(self.tmp, "shared", "allowed")
        inside = self.write("shared/allowed/eicar.com", EICAR)
        outside = self.write("shared/outside/eicar.com", EICAR)
        os.symlink(outside, os.path.join(allowed, "link.com"))
        return allowed, inside, outside

    def our_client(self, *inputs):
        """`analyze --backend celery --format json` on this test's broker and queue: the
        analyses by input."""
        queue = getattr(self, "queue", "clamav")
        r = self.pss("analyze", "--backend", "celery", "--broker", self.broker_url,
                     "--result-backend", self.redis.url, "--queue", queue, "--format", "json",
                     *inputs)
        return r, {l["input"]: l["analysis"] for l in r.json_lines()}


class InteropTest(CeleryTestCase):
    def test_python_client_gets_malicious_and_benign(self):
        self.start_worker("--concurrency", "2")
        eicar = self.write("eicar.com", EICAR)
        r1 = self.send(file_bounty(eicar))
        r2 = self.send({"id": 2, "artifact_type": "file",
                        "artifact_uri": "data:,just some clean text"})
        a1, a2 = r1.get(timeout=PATIENCE), r2.get(timeout=PATIENCE)
        self.assertEqual(a1["result"], "malicious")
        self.assertEqual(a1["result_name"], "Eicar-Test-Signature")
        self.assertEqual(a1["product"], "ClamAV")
        self.assertEqual(a2["result"], "benign")
        self.assertEqual(r1.state, "SUCCESS")
        # Late ack: the acknowledgements follow the stored results; nothing stays unacked.
        self.wait_until(lambda: self.redis.command("HLEN", "unacked") == "0",
                        what="the acknowledgements")

    def test_worker_scanning_in_worker_processes(self):
        w = self.start_worker("--backend", "process", "--concurrency", "2")
        eicar = self.write("eicar.com", EICAR)
        r1 = self.send(file_bounty(eicar))
        r2 = self.send({"id": 2, "artifact_type": "file",
                        "artifact_uri": "data:,just some clean text"})
        a1, a2 = r1.get(timeout=PATIENCE), r2.get(timeout=PATIENCE)
        self.assertEqual((a1["result"], a1["result_name"], a1["product"]),
                         ("malicious", "Eicar-Test-Signature", "ClamAV"))
        self.assertEqual(a2["result"], "benign")
        workers = [p for p in children_of(w.pid) if p in live_pids("cmdline", b"__worker")]
        self.assertEqual(len(workers), 2, "two worker processes scan the tasks")

    def test_a_failing_task_raises_in_python(self):
        self.start_worker()
        r = self.send({"bogus": 1})
        with self.assertRaises(ValueError) as cm:
            r.get(timeout=PATIENCE)
        self.assertIn("invalid bounty", str(cm.exception))
        self.assertEqual(r.state, "FAILURE")

    def test_unknown_task_name_is_not_registered(self):
        self.start_worker()
        r = self.app.send_task("pssupervise.nope", args=[], queue="clamav")
        with self.assertRaises(NotRegistered):
            r.get(timeout=PATIENCE)

    def test_expired_task_is_revoked(self):
        self.start_worker()
        r = self.send(file_bounty(os.path.join(SAMPLES, "hello.txt")),
                      expires=datetime.now(timezone.utc) - timedelta(seconds=5))
        with self.assertRaises(TaskRevokedError):
            r.get(timeout=PATIENCE)
        self.assertEqual(r.state, "REVOKED")

    def test_our_client_with_our_worker_matches_local(self):
        self.start_worker("--concurrency", "2")
        local = self.pss("analyze", "--format", "json", SAMPLES)
        remote = self.pss("analyze", "--backend", "celery", "--broker", self.redis.url,
                          "--format", "json", SAMPLES)
        self.assertEqual(remote.code, local.code, remote)
        strip = lambda r: [(l["input"], l["analysis"]["result"], l["analysis"].get("result_name"),
                            l["bounty"]["id"]) for l in r.json_lines()]
        self.assertEqual(strip(remote), strip(local))

    def test_our_client_with_a_python_worker(self):
        self.check_our_client_with_a_python_worker("pyq")

    def test_no_wait_prints_task_ids_that_python_can_wait_for(self):
        self.start_worker()
        r = self.pss("analyze", "--backend", "celery", "--broker", self.redis.url, "--no-wait",
                     os.path.join(SAMPLES, "eicar.com"))
        self.assertEqual(r.code, 0, r)
        inp, queue, task_id = r.stdout.strip().split("\t")
        self.assertEqual(queue, "clamav")
        a = self.app.AsyncResult(task_id).get(timeout=PATIENCE)
        self.assertEqual(a["result"], "malicious")

    def test_no_worker_is_a_clear_timeout(self):
        r = self.pss("analyze", "--backend", "celery", "--broker", self.redis.url,
                     "--wait-timeout", "2", os.path.join(SAMPLES, "hello.txt"))
        self.assertEqual(r.code, 2, r)
        self.assertIn("no result within 2 s (is a worker consuming queue 'clamav'?)", r.stdout)


class ArtifactPolicyTest(CeleryTestCase):
    """A task comes from whoever can write to the queue: by default the worker fetches from
    no loopback or private address and reads no local file, as the webhook; a refusal is an
    `unknown` answer that says so, never a silence."""

    def assert_refused(self, analysis, why):
        self.assertEqual(analysis["result"], "unknown", analysis)
        self.assertIn(why, analysis.get("error", ""), analysis)

    def test_by_default_no_loopback_address_and_no_local_file(self):
        server = self.loopback_server()
        self.start_worker(files=())
        eicar = self.write("eicar.com", EICAR)
        results = [self.send(uri_bounty(uri, i)) for i, uri in
                   enumerate([server.url + "/x", "file://" + eicar, eicar])]
        loopback, file_uri, path = [r.get(timeout=PATIENCE) for r in results]
        self.assert_refused(loopback, "refused: 127.0.0.1 is a loopback address")
        self.assert_refused(file_uri, "file URIs are not allowed here")
        self.assert_refused(path, "local files are not allowed here")
        self.assertEqual([r.state for r in results], ["SUCCESS"] * 3)  # answers, not failures
        self.assertEqual(server.requests, [], "a refused fetch reached the server")
        # Our own client: a local file goes by file:// path, a URL as it is.
        r, by_input = self.our_client(eicar, server.url + "/y")
        self.assertEqual(r.code, 2, r)
        self.assert_refused(by_input[eicar], "file URIs are not allowed here")
        self.assert_refused(by_input[server.url + "/y"], "refused: 127.0.0.1 is a loopback")
        self.assertEqual(server.requests, [], "a refused fetch reached the server")

    def test_allow_file_prefix_opens_that_folder_only(self):
        allowed, inside, outside = self.policy_dirs()
        w = self.start_worker(files=(allowed,))
        self.wait_for_log(w, "artifacts: local files only under " + allowed)
        escapes = [os.path.join(allowed, "..", "outside", "eicar.com"),  # ../ out of it
                   os.path.join(allowed, "link.com"),                     # a symlink out of it
                   outside]
        uris = ["file://" + inside, inside] + ["file://" + p for p in escapes]
        answers = [r.get(timeout=PATIENCE) for r in
                   [self.send(uri_bounty(u, i)) for i, u in enumerate(uris)]]
        self.assertEqual([a["result"] for a in answers[:2]], ["malicious"] * 2, answers)
        for a in answers[2:]:
            self.assert_refused(a, "refused: outside the directories allowed for local files")
        # Our client on the shared folder: what `analyze --backend celery` needs.
        r, by_input = self.our_client(inside, escapes[0], outside)
        self.assertEqual(by_input[inside]["result"], "malicious", r)
        self.assert_refused(by_input[escapes[0]], "refused: outside the directories allowed")
        self.assert_refused(by_input[outside], "refused: outside the directories allowed")

    def test_allow_private_networks_fetches_from_loopback(self):
        server = self.loopback_server()
        self.start_worker("--allow-private-networks", files=())
        a = self.send(uri_bounty(server.url + "/eicar.com")).get(timeout=PATIENCE)
        self.assertEqual(a["result"], "malicious", a)
        self.assertEqual(server.requests, ["/eicar.com"])
        r, by_input = self.our_client(server.url + "/again")
        self.assertEqual(by_input[server.url + "/again"]["result"], "malicious", r)
        self.assertEqual(server.requests, ["/eicar.com", "/again"])


class ReliabilityTest(CeleryTestCase):
    def test_killed_worker_task_is_redelivered_and_answered(self):
        self.slow_engine()
        opts = ("--queue", "slow", "--concurrency", "1", "--visibility-timeout", "3")
        a = self.start_worker(*opts, engine="slow", env={"FAKE_SECONDS": "30"})
        eicar = self.write("eicar.com", EICAR)
        r = self.send(file_bounty(eicar), queue="slow")
        self.wait_until(lambda: self.redis.command("HLEN", "unacked") == "1", what="delivery")
        # a keeps its delivery's time current while it runs...
        tag = self.redis.command("HKEYS", "unacked")
        first = self.redis.command("ZSCORE", "unacked_index", tag)
        self.wait_until(lambda: self.redis.command("ZSCORE", "unacked_index", tag) != first,
                        what="a to extend its delivery's visibility")
        a.kill()  # ...until SIGKILL mid-task: no ack, no result, no more extensions
        a.wait(30)
        self.assertIsNone(self.stored(r.id))
        b = self.start_worker(*opts, engine="slow", env={"FAKE_SECONDS": "0.2"})
        self.assertEqual(r.get(timeout=PATIENCE)["result"], "malicious")
        self.wait_for_log(b, "was not acknowledged within 3 s")
        self.wait_until(lambda: self.redis.command("HLEN", "unacked") == "0",
                        what="the acknowledgement")

    def test_a_task_longer_than_the_visibility_timeout_runs_once(self):
        # A live worker keeps its delivery's time in unacked_index current, so neither its own
        # restore nor a Python (kombu) one takes the task back while it runs, however long.
        vt = 2
        self.slow_engine()
        release = os.path.join(self.tmp, "release")
        count = self.scans
        w = self.start_worker("--queue", "slow", "--concurrency", "1", "--visibility-timeout",
                              str(vt), engine="slow", log="debug",
                              env={"FAKE_UNTIL": release})
        results = redis.Redis.from_url(self.redis.url).pubsub()
        kombu = Connection(self.redis.url, transport_options={"visibility_timeout": vt})
        try:
            self.check_runs_once(w, vt, results, kombu, release, count)
        finally:
            kombu.release()
            results.close()

    def check_runs_once(self, w, vt, results, kombu, release, count):
        task_id = str(uuid.uuid4())
        results.subscribe(f"celery-task-meta-{task_id}")  # before the task exists
        eicar = self.write("eicar.com", EICAR)
        r = self.send(file_bounty(eicar), queue="slow", task_id=task_id)
        self.wait_until(lambda: os.path.exists(count), what="the scan to start")
        tag = self.redis.command("HKEYS", "unacked")
        first = float(self.redis.command("ZSCORE", "unacked_index", tag))
        # kombu's own QoS.restore_visible, as a Python worker on this broker runs it: it takes
        # back what has a score older than time() - visibility_timeout.
        qos = kombu.default_channel.qos
        scores, kombu_ceilings = {first}, []

        def long_enough():
            score = self.redis.command("ZSCORE", "unacked_index", tag)
            if score:
                scores.add(float(score))
            kombu_ceilings.append(time.time() - vt)
            qos.restore_visible(num=None, interval=1)
            ours = [float(c) for c in
                    re.findall(r"older than (\d+\.\d+) are due", self.read_log(w))]
            # In flight for more than 3 visibility timeouts, its time moved at least 3 times,
            # and both restores have run late enough to take it back had it not moved.
            return (kombu_ceilings[-1] > first + 2 * vt and len(scores) > 3
                    and ours and max(ours) > first)

        self.wait_until(long_enough, what="the task in flight for 3 visibility timeouts",
                        details=lambda: f"scores {sorted(scores)}\n{self.read_log(w)}")
        self.write("release", b"")
        self.assertEqual(r.get(timeout=PATIENCE)["result"], "malicious")
        self.wait_until(lambda: self.redis.command("HLEN", "unacked") == "0",
                        what="the acknowledgement")
        published = []  # None: nothing more within 1 s
        while (m := results.get_message(timeout=1)) is not None:
            if m["type"] == "message":
                published.append(m)
        log = self.read_log(w)
        with open(count) as f:
            self.assertEqual(len(f.read().splitlines()), 1, "the scanner ran more than once")
        self.assertEqual(len(published), 1, published)
        self.assertEqual(self.redis.command("LLEN", "slow"), "0")
        self.assertEqual(log.count(f"task {task_id} (pssupervise.analyze) received"), 1, log)
        self.assertNotIn("worker died", log)
        self.assertNotIn("not acknowledged within", log)

    def test_redis_restart_loses_nothing(self):
        self.slow_engine()
        w = self.start_worker("--queue", "slow", "--concurrency", "2", engine="slow",
                              env={"FAKE_SECONDS": "0.3"})
        ids = self.queue_mixed_tasks("slow")
        self.wait_for_log(w, ") received")  # the worker is taking tasks
        self.redis.stop()   # queued and in-flight tasks survive in the append-only file
        self.wait_for_log(w, "retrying with back-off")  # it has seen Redis go
        self.redis.start()
        self.assert_mixed_tasks_answered(ids)
        self.wait_until(lambda: self.redis.command("HLEN", "unacked") == "0",
                        what="the acknowledgements")

    def test_sigterm_finishes_the_task_in_flight_and_leaves_the_rest_queued(self):
        self.slow_engine()
        release = os.path.join(self.tmp, "release")  # the scan in flight ends once it exists
        w = self.start_worker("--queue", "slow", "--concurrency", "1", engine="slow",
                              env={"FAKE_UNTIL": release})
        paths = [self.write(f"f{i}.txt", b"clean %d" % i) for i in range(3)]
        ids = [self.send(file_bounty(p, i), queue="slow").id for i, p in enumerate(paths)]
        self.wait_until(lambda: self.redis.command("HLEN", "unacked") == "1", what="delivery")
        w.send_signal(signal.SIGTERM)
        self.wait_for_log(w, "stopping: no new tasks")
        self.write("release", b"")
        self.assertEqual(w.wait(PATIENCE), 0)
        done = [i for i in ids if self.stored(i)]
        self.assertEqual(len(done), 1, "the task in flight is finished and stored")
        self.assertEqual(self.stored(done[0])["status"], "SUCCESS")
        self.assertEqual(self.redis.command("LLEN", "slow"), "2")  # not taken: prefetch 1
        self.assertEqual(self.redis.command("HLEN", "unacked"), "0")
        # This test's scanners only (their run log is in its folder): others run meanwhile.
        self.assertFalse(live_pids("cmdline", self.scans.encode()),
                         "a scanner outlived the worker")


if __name__ == "__main__":
    unittest.main(verbosity=2)
