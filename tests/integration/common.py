"""Helpers for integration tests: run the real binary, start real servers on loopback."""
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
MARKER = b"PSSUPERVISE-TEST-SIGNATURE-7f3a"

BINARY = os.environ["PSS_BINARY"]
SOURCE_ROOT = os.environ["PSS_SOURCE_ROOT"]
SAMPLES = os.path.join(SOURCE_ROOT, "tests", "samples")
# The binary under test is an AddressSanitizer build (env/test's second run): memory figures
# then include ASan's own shadow and quarantine.
SANITIZED = b"libasan" in subprocess.run(["ldd", BINARY], capture_output=True).stdout
CLAMAV_DB = os.path.join(SOURCE_ROOT, "engines", "clamav", "db")
# The result cache is on by default: a test that is not about it scans every time (its second
# run would otherwise be answered by the first). The cache's own tests set PSS_CACHE.
os.environ.setdefault("PSS_CACHE", "off")

# How long a test waits for something that is bound to happen (a server up, a file written, a
# process gone, a delivery made): far beyond what it needs even on a loaded 2-core machine under
# AddressSanitizer, so that only a hung test ever reaches it. Tests never assert on elapsed
# time, and never sleep in the hope that something has happened: they wait for it.
PATIENCE = 120

# The Wine prefixes the Wine tests of a run share (one per engine), made once.
WINE_STATE = os.environ.get("PSS_WINE_STATE", "/tmp/pss-wine-state")
_wine_state_lock = None


def hold_wine_state():
    """Takes the run's Wine state (PSS_WINE_STATE, the prefixes every Wine test shares) for
    this process's whole life. Meson runs integration tests side by side: two tests driving
    one prefix would start and kill each other's wineservers and count each other's
    processes, so the tests that use it take turns. Idempotent within a process."""
    global _wine_state_lock
    if _wine_state_lock is None:
        os.makedirs(WINE_STATE, exist_ok=True)
        _wine_state_lock = open(os.path.join(WINE_STATE, ".lock"), "w")
        fcntl.flock(_wine_state_lock, fcntl.LOCK_EX)  # released when the process exits


# The tests' one fake native scanner (engines as data). $1: the file; $2: a log it appends the
# file's path to at each run ("-": none); $3: a tag that marks the test's processes (leftover
# checks). What it does is decided by markers in the file and by its environment (the engine
# passes FAKE_*): FAKE_UNTIL, wait until that file exists (300 s at most, should the test have
# failed before); FAKE_SECONDS, sleep that long.
FAKE_SCANNER = r"""#!/bin/sh
f="$1"
if [ "$2" != "-" ]; then echo "$f" >> "$2"; fi
echo "FakeScan 1.0"
if [ -n "$FAKE_UNTIL" ]; then
  i=0
  while [ ! -e "$FAKE_UNTIL" ] && [ $i -lt 6000 ]; do sleep 0.05; i=$((i + 1)); done
fi
if [ -n "$FAKE_SECONDS" ]; then sleep "$FAKE_SECONDS"; fi
if grep -q KILLWORKER "$f"; then kill -9 $PPID; sleep 5; fi
if grep -q SLOW "$f"; then sleep 0.3; fi
if grep -q HANG "$f"; then sleep 1000; fi
if grep -q IGNORETERM "$f"; then trap '' TERM; echo ready >&2; sleep 1000; sleep 1000; fi
if grep -q CRASH "$f"; then kill -SEGV $$; fi
if grep -q SPAWN "$f"; then sleep 1000 >/dev/null 2>&1 & echo "$f: clean"; exit 0; fi
if grep -q HOLDPIPE "$f"; then sleep 1000 & echo "$f: clean"; exit 0; fi
if grep -q GARBAGE "$f"; then echo "lorem ipsum"; exit 0; fi
if grep -q BADEXIT "$f"; then echo "$f: clean"; exit 42; fi
if grep -q NOISE "$f"; then echo "fixme:ntdll:noise" >&2; fi
if grep -q CP1252 "$f"; then printf '%s: infected: W\374rm\226X\r\n' "$f"; exit 1; fi
if grep -q EICAR-STANDARD "$f"; then echo "$f: infected: Eicar.Fake"; exit 1; fi
echo "$f: clean"
exit 0
"""


def fake_engine(engines_dir, name="fake", runs=None, tag="-", scan=None, **manifest):
    """Writes the one-shot engine `name` running FAKE_SCANNER into engines_dir; returns its
    folder. `runs`: a file the scanner appends each scanned path to; `tag`: an argument marking
    its processes; `scan` and `manifest`: fields that replace the defaults."""
    d = os.path.join(engines_dir, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "fake.sh"), "w") as f:
        f.write(FAKE_SCANNER)
    m = {
        "product": "Fake Scanner", "vendor": "Test", "categories": ["*"],
        "driver": "oneshot", "pass_env": ["FAKE_SECONDS", "FAKE_UNTIL"],
        "scan": {
            "argv": ["/bin/sh", "${ENGINE_DIR}/fake.sh", "{path}", runs or "-", tag],
            # Generous: a scan that ends must never time out, however loaded the machine.
            "timeout": {"base": 120, "grace": 0.5},
            "exit_codes": {"0": "benign", "1": "malicious", "2": "error"},
            "rules": [
                {"pattern": ": infected: (?<name>.+)$", "verdict": "malicious"},
                {"pattern": ": clean$", "verdict": "benign"},
            ],
            "require_match": True,
        },
    }
    m["scan"].update(scan or {})
    m.update(manifest)
    with open(os.path.join(d, "engine.json"), "w") as f:
        json.dump(m, f)
    return d


def runs_of(runs):
    """The paths a fake scanner logged, one per run."""
    if not os.path.exists(runs):
        return []
    with open(runs) as f:
        return f.read().splitlines()


def wait_until(predicate, timeout=PATIENCE, what="the condition", details=None, interval=0.05):
    """Polls predicate() until it returns something true, and returns that; fails the test,
    naming `what` (and `details()` if given), once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            more = f"\n{details()}" if details else ""
            raise AssertionError(f"still waiting for {what} after {timeout} s{more}")
        time.sleep(interval)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...), or None
    if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


def children_of(ppid):
    """pids of the live (not zombie) children of ppid."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and (st := proc_stat(pid)) and st[0] != "Z" and int(st[1]) == ppid:
            found.append(int(pid))
    return found


def live_pids(proc_file, needle):
    """pids of live processes whose /proc/PID/<proc_file> (cmdline, environ) contains needle."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/{proc_file}", "rb") as f:
                data = f.read()
        except OSError:
            continue
        if needle in data and pid_alive(int(pid)):
            found.append(int(pid))
    return found


class Run:
    def __init__(self, proc, stdout, stderr):
        self.code = proc.returncode
        self.stdout = stdout.decode("utf-8", "replace")
        self.stderr = stderr.decode("utf-8", "replace")

    def json_lines(self):
        return [json.loads(l) for l in self.stdout.splitlines() if l.strip()]

    def __repr__(self):
        return f"exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


class PssTestCase(unittest.TestCase):
    """Each test gets a private temp dir and a private CLAMAV_RUNTIME_DIR inside it."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pss-it-")
        self.runtime = os.path.join(self.tmp, "runtime")
        os.mkdir(self.runtime, 0o700)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("CLAMAV_", "CLAMD_"))}
        self.env["CLAMAV_RUNTIME_DIR"] = self.runtime
        self.env["TMPDIR"] = self.tmp

    def tearDown(self):
        pidfile = os.path.join(self.runtime, "clamd.pid")
        if os.path.exists(pidfile):
            with open(pidfile) as f:
                pid = int(f.read().strip() or 0)
            if pid and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, data):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def pss(self, *args, stdin=None, env=None, timeout=300):
        """Runs pssupervise to its end; `timeout` only stops a hung run (which fails the test)."""
        e = dict(self.env)
        if env:
            e.update(env)
        proc = subprocess.Popen([BINARY, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=e, cwd=self.tmp)
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:  # something it started still holds the pipes
                out, err = b"", b""
            self.fail(f"pssupervise {' '.join(args)} still running after {timeout} s: hung\n"
                      f"{Run(proc, out, err)!r}")
        return Run(proc, out, err)

    def analyze_json(self, *args, **kw):
        r = self.pss("analyze", "--format", "json", *args, **kw)
        return r, {l["input"]: l for l in r.json_lines()}

    def assertNoClamdLeft(self):
        pidfile = os.path.join(self.runtime, "clamd.pid")
        if os.path.exists(pidfile):
            pid = int(open(pidfile).read().strip() or 0)
            self.assertFalse(pid and pid_alive(pid), f"clamd (pid {pid}) still running")

    def assertGone(self, pid, what):
        """pid exits (it may take a moment: it is being stopped): fails if it never does."""
        wait_until(lambda: not pid_alive(pid), what=f"{what} (pid {pid}) to exit")


class Clamd:
    """A clamd the test runs itself (what a user's own clamd is), on a unix socket or TCP."""

    def __init__(self, tmp, tcp_port=None, extra_config=(), name="own-clamd"):
        self.dir = os.path.join(tmp, name)
        os.makedirs(os.path.join(self.dir, "tmp"), mode=0o700)
        self.socket = os.path.join(self.dir, "clamd.sock")
        self.port = tcp_port
        conf = os.path.join(self.dir, "clamd.conf")
        lines = [
            "Foreground yes",
            f"DatabaseDirectory {CLAMAV_DB}",
            f"TemporaryDirectory {self.dir}/tmp",
            f"LogFile {self.dir}/clamd.log",
            f"PidFile {self.dir}/clamd.pid",
            "MaxThreads 2",
        ]
        if tcp_port:
            lines += [f"TCPSocket {tcp_port}", "TCPAddr 127.0.0.1"]
        else:
            lines += [f"LocalSocket {self.socket}"]
        lines += list(extra_config)
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(["/usr/sbin/clamd", "--foreground", f"--config-file={conf}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            if self.ping():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"test clamd exited with {self.proc.returncode}")
            time.sleep(0.02)
        raise RuntimeError(f"test clamd not ready in {PATIENCE} s")

    def ping(self):
        try:
            if self.port:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=1)
            else:
                s = socket.socket(socket.AF_UNIX)
                s.settimeout(1)
                s.connect(self.socket)
            with s:
                s.sendall(b"zPING\0")
                return s.recv(16) == b"PONG\0"
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


class RabbitMQServer:
    """A rabbitmq-server the test runs on free loopback ports (AMQP, Erlang distribution and its
    own epmd, which the test starts and stops by pid) with its own node name, data dir and
    cookie in the test's temp dir. Durable queues and persistent messages survive restart()."""

    def __init__(self, tmp, name="rabbitmq"):
        self.dir = os.path.join(tmp, name)
        os.makedirs(os.path.join(self.dir, "home"), exist_ok=True)
        self.port = free_port()
        self.epmd_port = free_port()
        self.dist_port = free_port()
        self.node = f"pss{self.port}@localhost"
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write(f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
                    "log.console = true\nlog.console.level = warning\nlog.file = false\n")
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        self.env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": os.path.join(self.dir, "home"),
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port), "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": os.path.join(self.dir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.dir, "log"),
            "RABBITMQ_CONFIG_FILE": os.path.join(self.dir, "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.dir, "enabled_plugins"),
            "RABBITMQ_PID_FILE": os.path.join(self.dir, "rabbitmq.pid"),
        }
        # Our own epmd, in the foreground: rabbitmq-server would start a daemon nobody stops.
        self.epmd = subprocess.Popen(
            ["/usr/bin/epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self, timeout=300):
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen(["/usr/lib/rabbitmq/bin/rabbitmq-server"], env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=self.dir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {self.proc.returncode}; "
                                   f"see {self.log.name}")
            try:  # the AMQP protocol header gets connection.start back once the node is up
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.sendall(b"AMQP\x00\x00\x09\x01")
                    if len(s.recv(7)) == 7:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"rabbitmq-server not ready in {timeout} s; see {self.log.name}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # a clean shutdown: durable queues are written out
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()

    def restart(self):
        self.stop()
        self.start()

    def close(self):
        self.stop()
        if self.epmd.poll() is None:
            self.epmd.terminate()
            self.epmd.wait(30)

    def queue_counts(self, queue):
        """(ready, unacknowledged) messages of a queue, from rabbitmqctl; (0, 0) if absent."""
        r = subprocess.run(["/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", self.node, "-q",
                            "list_queues", "name", "messages_ready",
                            "messages_unacknowledged"],
                           env=self.env, capture_output=True, text=True, timeout=PATIENCE)
        for line in r.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == queue:
                return int(parts[1]), int(parts[2])
        return 0, 0


class RedisServer:
    """A redis-server the test runs on a free loopback port in its temp dir; with an
    append-only file fsynced always, so a restart keeps what was queued."""

    def __init__(self, tmp, name="redis"):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.proc = subprocess.Popen(
            ["/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self.dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--protected-mode", "no", "--daemonize", "no", "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            time.sleep(0.02)
        raise RuntimeError(f"redis-server not ready in {PATIENCE} s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)

    def command(self, *args):
        """One command through redis-cli (enough for test checks)."""
        r = subprocess.run(["redis-cli", "-p", str(self.port), "--raw", *args],
                           capture_output=True, text=True, timeout=PATIENCE)
        return r.stdout.strip()
