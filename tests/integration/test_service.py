"""The services (webhook, icap, worker) under a service manager's notify protocol: this test
plays systemd, with a real datagram socket as $NOTIFY_SOCKET, and checks what it is told and
when: READY=1 only once the engines answered and the service listens, WATCHDOG=1 again and
again, RELOADING=1 then READY=1 around a SIGHUP reload, STOPPING=1 at SIGTERM."""
import os
import re
import signal
import socket
import subprocess
import threading
import unittest
import urllib.request

from common import BINARY, PATIENCE, PssTestCase, RedisServer, pid_alive, wait_until


class Manager:
    """The service manager's end: a bound datagram socket and every message received."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []  # each a dict of its KEY=value lines, in arrival order
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self.lock:
                self.messages.append(fields)

    def close(self):
        self.sock.close()

    def all(self):
        with self.lock:
            return list(self.messages)

    def index_of(self, key, value="1", after=-1):
        """The index of the first message after `after` carrying KEY=value, or None."""
        for i, m in enumerate(self.all()):
            if i > after and m.get(key) == value:
                return i
        return None

    def wait_for(self, key, value="1", after=-1, what=None):
        return wait_until(lambda: self.index_of(key, value, after) is not None and
                          self.index_of(key, value, after) + 1,
                          what=what or f"{key}={value} from the service",
                          details=lambda: repr(self.all())) - 1


class ServiceCase(PssTestCase):
    def setUp(self):
        super().setUp()
        self.manager = Manager(os.path.join(self.tmp, "notify.sock"))
        self.proc = None

    def tearDown(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(60)
        self.manager.close()
        super().tearDown()

    def start(self, *args, watchdog_usec="1000000", extra_env=None):
        env = dict(self.env, NOTIFY_SOCKET=self.manager.path)
        if watchdog_usec:
            env["WATCHDOG_USEC"] = watchdog_usec
        env.update(extra_env or {})
        self.log = os.path.join(self.tmp, "service.log")
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen([BINARY, "--log-level", "info", *args],
                                         stdout=subprocess.DEVNULL, stderr=err, env=env,
                                         cwd=self.tmp)

    def read_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def clamd_pid(self):
        pidfile = os.path.join(self.runtime, "clamd.pid")
        try:
            with open(pidfile) as f:
                pid = int(f.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid and pid_alive(pid) else None

    def stop_and_check(self):
        """SIGTERM: STOPPING=1, then a clean exit."""
        self.proc.send_signal(signal.SIGTERM)
        self.manager.wait_for("STOPPING")
        self.assertEqual(self.proc.wait(PATIENCE), 0, self.read_log())


class WebhookNotifyTest(ServiceCase):
    def test_ready_watchdog_reload_and_stop(self):
        self.start("--engine", "clamav", "webhook", "-p", "0", "--insecure")
        ready = self.manager.wait_for("READY", what="READY=1 from the webhook")
        # When READY=1 arrives the webhook listens and clamd answers: /metrics, served on the
        # port it printed, shows the engine ready.
        log = self.read_log()
        m = re.search(r"pssupervise webhook: listening on 127\.0\.0\.1:(\d+)", log)
        self.assertIsNotNone(m, "READY=1 came before the webhook listened:\n" + log)
        clamd = self.clamd_pid()
        self.assertIsNotNone(clamd, "READY=1 came before clamd ran")
        with urllib.request.urlopen(f"http://127.0.0.1:{m.group(1)}/metrics",
                                    timeout=PATIENCE) as r:
            metrics = r.read().decode()
        self.assertIn('pss_engine_up{engine="clamav",state="ready"} 1', metrics)
        status = self.manager.all()[ready].get("STATUS", "")
        self.assertIn("clamav", status)
        self.assertIn("bounties in flight", status)
        # The engines do not inherit the service's notify socket: they do not speak for it.
        with open(f"/proc/{clamd}/environ", "rb") as f:
            self.assertNotIn(b"NOTIFY_SOCKET=", f.read())

        # WATCHDOG=1 keeps coming (half of WATCHDOG_USEC apart): three more after READY=1.
        seen = ready
        for _ in range(3):
            seen = self.manager.wait_for("WATCHDOG", after=seen)

        self.proc.send_signal(signal.SIGHUP)
        reloading = self.manager.wait_for("RELOADING", after=ready)
        self.assertIn("MONOTONIC_USEC", self.manager.all()[reloading])
        self.manager.wait_for("READY", after=reloading, what="READY=1 after the reload")

        self.stop_and_check()

    def test_watchdog_for_another_pid_is_not_ours(self):
        # WATCHDOG_PID names the process the watchdog is for: another one's is not ours.
        self.start("--engine", "clamav", "webhook", "-p", "0", "--insecure",
                   extra_env={"WATCHDOG_PID": "1"})
        self.manager.wait_for("READY")
        self.stop_and_check()
        self.assertIsNone(self.manager.index_of("WATCHDOG"), repr(self.manager.all()))


class IcapNotifyTest(ServiceCase):
    def test_ready_once_listening_then_stopping(self):
        self.start("--engine", "clamav", "icap", "-p", "0")
        ready = self.manager.wait_for("READY", what="READY=1 from the ICAP server")
        self.assertIn("pssupervise icap: listening on", self.read_log())
        self.assertIsNotNone(self.clamd_pid(), "READY=1 came before clamd ran")
        self.assertIn("connections", self.manager.all()[ready].get("STATUS", ""))
        self.manager.wait_for("WATCHDOG", after=ready)
        self.stop_and_check()


class WorkerNotifyTest(ServiceCase):
    def setUp(self):
        super().setUp()
        self.redis = RedisServer(self.tmp)  # started
        # Cleanups run after tearDown: the worker is gone before its broker is.
        self.addCleanup(self.redis.stop)

    def test_ready_once_the_engines_answered_then_stopping(self):
        self.start("--engine", "clamav", "worker", "--broker", self.redis.url)
        ready = self.manager.wait_for("READY", what="READY=1 from the worker")
        self.assertIsNotNone(self.clamd_pid(), "READY=1 came before clamd ran")
        self.assertIn("tasks in flight", self.manager.all()[ready].get("STATUS", ""))
        self.manager.wait_for("WATCHDOG", after=ready)
        self.stop_and_check()


if __name__ == "__main__":
    unittest.main()
