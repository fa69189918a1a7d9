#!/usr/bin/python3
"""`pssupervise worker` and `analyze --backend celery` on a real rabbitmq-server (AMQP 0-9-1)
with results in a real redis-server, against Debian's python3-celery (run under
/usr/bin/python3): the same interop as on Redis, plus what AMQP does its own way: a killed
worker's task comes back at once, a broker restart loses nothing, SIGTERM leaves the rest
queued, bad URLs and credentials are clear errors."""
import os
import shutil
import signal
import sys
import tempfile
import unittest
import uuid
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import EICAR, PATIENCE, SAMPLES, RabbitMQServer, live_pids  # noqa: E402
import test_celery as base  # noqa: E402  (the module: its tests are not run twice)

from celery.exceptions import NotRegistered, TaskRevokedError  # noqa: E402

file_bounty = base.file_bounty


class AmqpTestCase(base.CeleryTestCase):
    """One RabbitMQ node per class (it takes seconds to boot); a fresh queue per test."""

    @classmethod
    def setUpClass(cls):
        cls.rabbit_dir = tempfile.mkdtemp(prefix="pss-rabbitmq-")
        cls.rabbit = RabbitMQServer(cls.rabbit_dir)

    @classmethod
    def tearDownClass(cls):
        cls.rabbit.close()
        shutil.rmtree(cls.rabbit_dir, ignore_errors=True)

    @property
    def broker_url(self):
        return self.rabbit.url

    def setUp(self):
        super().setUp()
        self.queue = "q" + uuid.uuid4().hex[:10]

    def send(self, bounty, queue=None, **kw):
        return super().send(bounty, queue=queue or self.queue, **kw)

    def counts(self):
        return self.rabbit.queue_counts(self.queue)

    def wait_for_counts(self, ready, unacked, timeout=PATIENCE):
        self.wait_until(lambda: self.counts() == (ready, unacked), timeout=timeout,
                        what=f"queue {self.queue} at {ready} ready, {unacked} unacked",
                        details=lambda: f"now {self.counts()}")


class AmqpInteropTest(AmqpTestCase):
    def test_python_client_gets_malicious_and_benign(self):
        self.start_worker("--queue", self.queue, "--concurrency", "2")
        eicar = self.write("eicar.com", EICAR)
        r1 = self.send(file_bounty(eicar))
        r2 = self.send({"id": 2, "artifact_type": "file",
                        "artifact_uri": "data:,just some clean text"})
        a1, a2 = r1.get(timeout=PATIENCE), r2.get(timeout=PATIENCE)
        self.assertEqual(a1["result"], "malicious")
        self.assertEqual(a1["result_name"], "Eicar-Test-Signature")
        self.assertEqual(a2["result"], "benign")
        self.assertEqual(r1.state, "SUCCESS")
        # Late ack: basic.ack follows the stored results; nothing stays on the queue.
        self.wait_for_counts(0, 0)

    def test_python_declared_queue_first_is_accepted(self):
        # Python declares the exchange, queue and binding before our worker exists: our
        # declarations must match them exactly, or RabbitMQ closes the channel (406).
        r = self.send(file_bounty(os.path.join(SAMPLES, "eicar.com")))
        self.wait_for_counts(1, 0)
        w = self.start_worker("--queue", self.queue)
        self.assertEqual(r.get(timeout=PATIENCE)["result"], "malicious")
        with open(w.log_path, errors="replace") as f:
            self.assertNotIn("PRECONDITION_FAILED", f.read())

    def test_a_failing_task_raises_in_python(self):
        self.start_worker("--queue", self.queue)
        r = self.send({"bogus": 1})
        with self.assertRaises(ValueError) as cm:
            r.get(timeout=PATIENCE)
        self.assertIn("invalid bounty", str(cm.exception))
        self.wait_for_counts(0, 0)

    def test_unknown_task_name_is_not_registered(self):
        self.start_worker("--queue", self.queue)
        r = self.app.send_task("pssupervise.nope", args=[], queue=self.queue)
        with self.assertRaises(NotRegistered):
            r.get(timeout=PATIENCE)

    def test_expired_task_is_revoked(self):
        self.start_worker("--queue", self.queue)
        # Already expired: RabbitMQ hands it over only because a consumer slot is free at once
        # (a message TTL of 0), and the worker answers it REVOKED.
        r = self.send(file_bounty(os.path.join(SAMPLES, "hello.txt")),
                      expires=datetime.now(timezone.utc) - timedelta(seconds=5))
        with self.assertRaises(TaskRevokedError):
            r.get(timeout=PATIENCE)

    def test_our_client_with_our_worker_matches_local(self):
        self.start_worker("--queue", self.queue, "--concurrency", "2")
        local = self.pss("analyze", "--format", "json", SAMPLES)
        remote = self.pss("analyze", "--backend", "celery", "--broker", self.rabbit.url,
                          "--result-backend", self.redis.url, "--queue", self.queue,
                          "--format", "json", SAMPLES)
        self.assertEqual(remote.code, local.code, remote)
        strip = lambda r: [(l["input"], l["analysis"]["result"], l["analysis"].get("result_name"),
                            l["bounty"]["id"]) for l in r.json_lines()]
        self.assertEqual(strip(remote), strip(local))
        self.wait_for_counts(0, 0)

    def test_our_client_with_a_python_worker(self):
        # Our AMQP message (raw JSON body, native properties, headers as a field table) is
        # what a Python worker takes as its own.
        self.check_our_client_with_a_python_worker(self.queue)

    def test_no_wait_prints_task_ids_that_python_can_wait_for(self):
        self.start_worker("--queue", self.queue)
        r = self.pss("analyze", "--backend", "celery", "--broker", self.rabbit.url,
                     "--result-backend", self.redis.url, "--queue", self.queue, "--no-wait",
                     os.path.join(SAMPLES, "eicar.com"))
        self.assertEqual(r.code, 0, r)
        inp, queue, task_id = r.stdout.strip().split("\t")
        self.assertEqual(queue, self.queue)
        self.assertEqual(self.app.AsyncResult(task_id).get(timeout=PATIENCE)["result"],
                         "malicious")

    def test_the_artifact_policy_holds_on_rabbitmq(self):
        allowed, inside, outside = self.policy_dirs()
        server = self.loopback_server()
        self.start_worker("--queue", self.queue, files=(allowed,))
        r, by_input = self.our_client(inside, outside)
        self.assertEqual(by_input[inside]["result"], "malicious", r)
        self.assertEqual(by_input[outside]["result"], "unknown", r)
        self.assertIn("refused: outside the directories allowed", by_input[outside]["error"])
        a = self.send(base.uri_bounty(server.url + "/x")).get(timeout=PATIENCE)
        self.assertEqual(a["result"], "unknown", a)
        self.assertIn("refused: 127.0.0.1 is a loopback address", a["error"])
        self.assertEqual(server.requests, [])
        self.wait_for_counts(0, 0)

    def test_amqp_broker_needs_a_redis_result_backend(self):
        r = self.pss("analyze", "--backend", "celery", "--broker", self.rabbit.url,
                     os.path.join(SAMPLES, "hello.txt"), env={"PSS_RESULT_BACKEND": ""})
        self.assertNotEqual(r.code, 0, r)
        self.assertIn("an amqp:// broker needs a Redis result backend", r.stderr)
        r = self.pss("worker", "--broker", "amqps://h/", "--result-backend", self.redis.url)
        self.assertNotEqual(r.code, 0, r)
        self.assertIn("TLS (amqps://) is not supported", r.stderr)

    def test_wrong_password_is_a_clear_error(self):
        url = self.rabbit.url.replace("guest:guest@", "guest:wrong@")
        r = self.pss("analyze", "--backend", "celery", "--broker", url,
                     "--result-backend", self.redis.url, "--queue", self.queue,
                     "--wait-timeout", "3", os.path.join(SAMPLES, "hello.txt"))
        self.assertNotEqual(r.code, 0, r)
        self.assertIn("login as 'guest' on vhost '/' failed", r.stderr + r.stdout)
        self.assertIn("ACCESS_REFUSED", r.stderr + r.stdout)


class AmqpReliabilityTest(AmqpTestCase):
    def test_killed_worker_task_is_redelivered_and_answered(self):
        self.slow_engine()
        opts = ("--queue", self.queue, "--concurrency", "1")
        a = self.start_worker(*opts, engine="slow", env={"FAKE_SECONDS": "30"})
        eicar = self.write("eicar.com", EICAR)
        r = self.send(file_bounty(eicar))
        self.wait_for_counts(0, 1)  # delivered to a, not acknowledged
        a.kill()  # SIGKILL mid-task: its connection drops, RabbitMQ requeues the delivery
        a.wait(30)
        self.assertIsNone(self.stored(r.id))
        self.wait_for_counts(1, 0)
        b = self.start_worker(*opts, engine="slow", env={"FAKE_SECONDS": "0.2"})
        self.assertEqual(r.get(timeout=PATIENCE)["result"], "malicious")
        self.wait_for_log(b, "(redelivered)")
        self.wait_for_counts(0, 0)

    def test_broker_restart_loses_nothing(self):
        self.slow_engine()
        w = self.start_worker("--queue", self.queue, "--concurrency", "2", engine="slow",
                              env={"FAKE_SECONDS": "0.3"})
        ids = self.queue_mixed_tasks(self.queue)
        self.wait_for_log(w, ") received")  # the worker is taking tasks
        # Queued and in-flight tasks survive: the queue is durable, the messages persistent,
        # and what was unacknowledged goes back to the queue.
        self.rabbit.restart()
        self.assert_mixed_tasks_answered(ids)
        self.wait_for_counts(0, 0)
        self.wait_for_log(w, "connection to")  # "broker connection to ... is back"
        self.assertIsNone(w.poll(), "the worker outlives a broker restart")

    def test_sigterm_finishes_the_task_in_flight_and_leaves_the_rest_queued(self):
        self.slow_engine()
        release = os.path.join(self.tmp, "release")  # the scan in flight ends once it exists
        w = self.start_worker("--queue", self.queue, "--concurrency", "1", engine="slow",
                              env={"FAKE_UNTIL": release})
        paths = [self.write(f"f{i}.txt", b"clean %d" % i) for i in range(3)]
        ids = [self.send(file_bounty(p, i)).id for i, p in enumerate(paths)]
        self.wait_for_counts(2, 1)  # prefetch 1: one delivered, two ready
        w.send_signal(signal.SIGTERM)
        self.wait_for_log(w, "stopping: no new tasks")
        self.write("release", b"")
        self.assertEqual(w.wait(PATIENCE), 0)
        done = [i for i in ids if self.stored(i)]
        self.assertEqual(len(done), 1, "the task in flight is finished and stored")
        self.assertEqual(self.stored(done[0])["status"], "SUCCESS")
        self.assertEqual(self.counts(), (2, 0))
        # This test's scanners only (their run log is in its folder): others run meanwhile.
        self.assertFalse(live_pids("cmdline", self.scans.encode()),
                         "a scanner outlived the worker")


if __name__ == "__main__":
    unittest.main(verbosity=2)
