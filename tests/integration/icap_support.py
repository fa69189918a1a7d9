"""Real ICAP components for integration tests and benchmarks, each on a free loopback port in
the test's temp dir, in the foreground, stopped by pid: c-icap's virus_scan in front of a clamd
(`CIcap`), Squid as an ICAP client (`Squid`), a loopback HTTP origin (`OriginServer`), the real
`c-icap-client` (`c_icap_client`), and, from icap_client.py, the small raw ICAP client
(`IcapClient`) that can also send malformed bytes (`raw`). Every stop() is idempotent and fits
tearDown / addCleanup.

Facts these rely on (checked on Debian 12: c-icap 0.5.10, virus_scan 0.5.5, Squid 5.7; see
FIELD-NOTES §7):
- Squid 5.7 stalls any RESPMOD whose HTTP body is over 65,535 bytes when the ICAP server sends
  nothing but "100 Continue" until it has the whole body (c-icap's `mode=simple`, and any AV
  server that scans before answering): Squid sends the 1,024-byte preview and one 64,511-byte
  chunk, then stops reading from the origin for good (cache.log at debug 11,9: "will not read up
  to 0 into buffer"), until icap_io_timeout (5 min by default) gives 500 ERR_ICAP_FAILURE.
  Squid bug 5352 (squid-cache/squid PRs 1777, 2065). Sending the ICAP 200 and the HTTP head
  early does not unblock it; sending body bytes does: c-icap's default mode with
  SendPercentData (`CIcap.STREAM_SERVICE`, "avstream": 5 % of what it has received; ignored
  by `mode=simple`), or, from a test server, one body byte per chunk received. A late
  infection then gets through partly: the client sees a 200 cut short (virus_scan's
  "partiallyblocked"), not a 403 page.
- Squid's OPTIONS request has no Encapsulated header. Its RESPMOD says "Allow: 204, trailers"
  for a body it can keep a copy of (up to 64 KiB) and "Allow: trailers" alone above; a body
  shorter than the server's Preview goes whole as the preview ("Preview: 68" for EICAR, ieof).
- c-icap folds X-Violations-Found over continuation lines:
  "1\\r\\n\\t-\\r\\n\\tNAME\\r\\n\\t0\\r\\n\\t0" (count; then file name, threat, problem id,
  resolution per threat); here that value reads "1\\n-\\nNAME\\n0\\n0".
"""
import glob
import http.client
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass

from common import PATIENCE, free_port, proc_stat
from icap_client import (Headers, IcapClient, IcapConnection, IcapError, IcapResponse,
                         chunked, parse_encapsulated, parse_head, respmod_parts,
                         respmod_request, threat_names)

# Tests import the raw client from here too, beside the components.
__all__ = [
    "CIcap", "Squid", "OriginServer", "HttpReply", "c_icap_client", "ClientResult",
    "stop_process", "group_pids", "C_ICAP", "C_ICAP_CLIENT", "SQUID", "STOP_GRACE",
    "Headers", "IcapClient", "IcapConnection", "IcapError", "IcapResponse", "chunked",
    "parse_encapsulated", "parse_head", "respmod_parts", "respmod_request", "threat_names",
]

C_ICAP = "/usr/bin/c-icap"
C_ICAP_CLIENT = "/usr/bin/c-icap-client"
SQUID = "/usr/sbin/squid"
# virus_scan.so, clamd_mod.so (Debian: /usr/lib/<triplet>/c_icap).
C_ICAP_MODULES = next(iter(glob.glob("/usr/lib/*/c_icap")), "/usr/lib/x86_64-linux-gnu/c_icap")

# A server asked to stop gets this long before SIGKILL (Squid takes about 2 s with
# shutdown_lifetime 1 s; c-icap about 1 s).
STOP_GRACE = 30


# ------------------------------------------------------------------------------- processes --

def group_pids(pgid):
    """Live processes in process group pgid."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and (st := proc_stat(pid)) and st[0] != "Z" and int(st[2]) == pgid:
            found.append(int(pid))
    return found


def stop_process(proc, grace=STOP_GRACE):
    """Stops a server started with start_new_session=True: SIGTERM to its pid; SIGKILL to its
    process group if it has not exited after `grace` seconds; then, once the same grace has
    run out, SIGKILL by pid to anything still left in that group (children it failed to take
    down). Returns True if any SIGKILL was needed. Idempotent."""
    if proc is None:
        return False
    killed = False
    deadline = time.monotonic() + grace
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            killed = True
            os.killpg(proc.pid, signal.SIGKILL)  # still unreaped: the group id is still ours
            proc.wait(PATIENCE)
    while group_pids(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    deadline = time.monotonic() + PATIENCE
    while (left := group_pids(proc.pid)) and time.monotonic() < deadline:
        killed = True
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    return killed


def _wait_ready(proc, probe, what, logs, timeout=PATIENCE):
    """Polls probe() until true; fails naming `what` and the end of each of `logs` if the
    process exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if probe():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}\n"
                               + "\n".join(_tail(log) for log in logs))
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{what} not ready in {timeout} s\n"
                               + "\n".join(_tail(log) for log in logs))
        time.sleep(0.02)


def _tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return f"--- {path}\n" + "".join(f.readlines()[-n:])
    except OSError:
        return f"--- {path}: none"


def _make_traversable(path, top):
    """Squid runs as user proxy: every folder from `top` down to `path` needs o+x."""
    path, top = os.path.abspath(path), os.path.abspath(top)
    d = path
    while True:
        mode = os.stat(d).st_mode
        if not mode & 0o001:
            os.chmod(d, (mode & 0o7777) | 0o001)
        if d == top or d == os.path.dirname(d):
            break
        d = os.path.dirname(d)


# -------------------------------------------------------------------------------- c-icap --

def c_icap_leftovers(pids):
    """What c-icap processes `pids` remove only when they exit cleanly: ([the shared memory
    they map, /dev/shm/c-icap-shared-kids-queue.N], [their lock files,
    /tmp/icap_lock_accept.XXXXXX and /tmp/icap_lock_children-queue.XXXXXX: c-icap hard-codes
    /tmp whatever its TmpDir])."""
    shm, locks = set(), set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as f:
                shm |= set(re.findall(r"(/dev/shm/c-icap\S+)", f.read()))
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("/tmp/icap_lock_"):
                    locks.add(target)
        except OSError:
            pass  # gone meanwhile
    return sorted(shm), sorted(locks)


def remove_files(paths):
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


class CIcap:
    """c-icap with virus_scan.so and clamd_mod.so in front of a clamd (`clamd_socket`: its unix
    socket path, which clamd_mod uses with FILDES; or (host, port), when clamd_mod sends file
    names, so clamd must read c-icap's temp dir), on a loopback port, configured as in
    FIELD-NOTES §7. Services:
    SERVICE "avscan" (mode=simple: the answer waits for the whole body) and STREAM_SERVICE
    "avstream" (c-icap's default mode with SendPercentData `send_percent`: it starts sending
    that share of the data before the scan ends, which Squid 5.7 needs for bodies over 64 KiB,
    and lets a late infection through partly). Ready once OPTIONS answers 200."""

    SERVICE = "avscan"
    STREAM_SERVICE = "avstream"

    def __init__(self, tmp, clamd_socket, port=None, name="c-icap", servers=2,
                 threads_per_child=4, send_percent=5, extra_config=()):
        self.dir = os.path.join(tmp, name)
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        self.port = port or free_port()
        self.conf = os.path.join(self.dir, "c-icap.conf")
        self.server_log = os.path.join(self.dir, "server.log")
        self.access_log = os.path.join(self.dir, "access.log")
        self.stdout_log = os.path.join(self.dir, "stdout.log")
        if isinstance(clamd_socket, str):
            clamd_lines = [f"clamd_mod.ClamdSocket {clamd_socket}"]
        else:
            clamd_lines = [f"clamd_mod.ClamdHost {clamd_socket[0]}",
                           f"clamd_mod.ClamdPort {clamd_socket[1]}"]
        lines = [
            f"PidFile {self.dir}/c-icap.pid",
            f"CommandsSocket {self.dir}/c-icap.ctl",
            f"Port 127.0.0.1:{self.port}",
            "StartServers 1",
            f"MaxServers {servers}",
            f"ThreadsPerChild {threads_per_child}",
            "MinSpareThreads 2",
            f"MaxSpareThreads {max(2 * threads_per_child, 8)}",
            f"TmpDir {self.dir}/tmp",
            f"ModulesDir {C_ICAP_MODULES}",
            f"ServicesDir {C_ICAP_MODULES}",
            "TemplateDir /usr/share/c_icap/templates/",
            "LoadMagicFile /etc/c-icap/c-icap.magic",
            f"ServerLog {self.server_log}",
            f"AccessLog {self.access_log}",
            "Module common clamd_mod.so",
            *clamd_lines,
            "Service antivirus_module virus_scan.so",
            f"ServiceAlias {self.SERVICE} virus_scan?allow204=on&sizelimit=off&mode=simple",
            f"ServiceAlias {self.STREAM_SERVICE} virus_scan?allow204=on&sizelimit=off",
            "virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE GIF JPEG MSOFFICE",
            "virus_scan.MaxObjectSize 100M",
            "virus_scan.DefaultEngine clamd",
            f"virus_scan.SendPercentData {send_percent}",  # ignored by mode=simple
            "virus_scan.StartSendPercentDataAfter 0",
            *extra_config,
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.client = IcapClient("127.0.0.1", self.port, self.SERVICE)
        self.shm, self.locks = [], []
        self._log = open(self.stdout_log, "ab")
        # -N: foreground. As root, without a User line, c-icap keeps running as root.
        self.proc = subprocess.Popen([C_ICAP, "-N", "-f", self.conf], stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=self.dir)
        try:
            _wait_ready(self.proc, self._answers_options, f"c-icap on port {self.port}",
                        [self.stdout_log, self.server_log])
        except BaseException:
            self.stop()
            raise
        # What c-icap removes itself on a clean exit, and stop() after a SIGKILL.
        self.shm, self.locks = c_icap_leftovers([self.proc.pid] + group_pids(self.proc.pid))

    def _answers_options(self):
        try:
            status_line, _ = IcapClient("127.0.0.1", self.port, self.SERVICE, timeout=5).options()
            return status_line.split(" ")[1] == "200"
        except (OSError, IcapError):
            return False

    @property
    def url(self):
        return self.url_for(self.SERVICE)

    def url_for(self, service):
        return f"icap://127.0.0.1:{self.port}/{service}"

    def options(self, service=None):
        """(status line, Headers) of a raw OPTIONS."""
        return self.client.options(service)

    def respmod(self, body, preview=None, allow204=True, service=None, **request_options):
        return self.client.respmod(body, preview=preview, allow204=allow204, service=service,
                                   **request_options)

    def raw(self, data, **kw):
        return self.client.raw(data, **kw)

    def log(self):
        return _tail(self.server_log, 200)

    def stop(self):
        if getattr(self, "proc", None) is None:
            return
        if stop_process(self.proc):
            remove_files(self.shm + self.locks)
        self.proc = None
        self._log.close()


# --------------------------------------------------------------------------------- Squid --

@dataclass
class HttpReply:
    status: int
    headers: Headers
    body: bytes
    complete: bool  # False: the connection ended before the announced length


class Squid:
    """Squid as a forward proxy on a loopback port, with one ICAP service (`method`, e.g.
    respmod_precache or reqmod_precache) at `icap_url`, bypass=0 unless `bypass`. Everything
    it writes stays in <tmp>/<name> (made 0777: Squid drops to user proxy; the folders above
    it get o+x) except its shared memory, /dev/shm/<service name>-*.shm, which a unique
    service name (-n) keeps apart from other Squids and stop() removes if Squid had to be
    killed. ICP, HTCP, SNMP and the pinger are off; its DNS socket is bound to 127.0.0.1.
    icap_service_failure_limit -1: a service that failed stays in use (tests break it on
    purpose); icap_io_timeout 90 s: an ICAP stall ends in a 500 before a test's patience.
    Ready when cache.log says it accepts connections and its port does."""

    def __init__(self, tmp, icap_url, port=None, name="squid", method="respmod_precache",
                 bypass=False, extra_config=()):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o777)
        _make_traversable(tmp, tmp)
        self.port = port or free_port()
        self.service_name = f"pss{self.port}"
        self.conf = os.path.join(self.dir, "squid.conf")
        self.cache_log = os.path.join(self.dir, "cache.log")
        self.access_log = os.path.join(self.dir, "access.log")
        lines = [
            f"http_port 127.0.0.1:{self.port}",
            f"pid_filename {self.dir}/squid.pid",
            f"cache_log {self.cache_log}",
            f"access_log stdio:{self.access_log}",
            "cache_store_log none",
            "netdb_filename none",
            f"coredump_dir {self.dir}",
            "pinger_enable off",
            "icp_port 0",
            "htcp_port 0",
            "udp_incoming_address 127.0.0.1",
            "dns_nameservers 127.0.0.1",
            "visible_hostname pss-test-squid",
            "cache deny all",
            "cache_mem 8 MB",
            "acl localnet src 127.0.0.1",
            "http_access allow localnet",
            "http_access deny all",
            "icap_enable on",
            f"icap_service av {method} bypass={1 if bypass else 0} {icap_url}",
            "adaptation_access av allow all",
            "icap_service_failure_limit -1",
            "icap_io_timeout 90 seconds",
            "shutdown_lifetime 1 seconds",
            *extra_config,
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self._log = open(os.path.join(self.dir, "stdout.log"), "ab")
        self.proc = subprocess.Popen([SQUID, "-N", "-n", self.service_name, "-f", self.conf],
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=self.dir)
        try:
            _wait_ready(self.proc, self._accepting, f"squid on port {self.port}",
                        [os.path.join(self.dir, "stdout.log"), self.cache_log])
        except BaseException:
            self.stop()
            raise

    def _accepting(self):
        try:
            with open(self.cache_log, errors="replace") as f:
                if "Accepting HTTP Socket connections" not in f.read():
                    return False
            socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
            return True
        except OSError:
            return False

    @property
    def proxy_url(self):
        return f"http://127.0.0.1:{self.port}"

    def get(self, url, timeout=PATIENCE, headers=None):
        """GET `url` through the proxy: HttpReply (any status; a body cut short is returned
        with complete=False)."""
        return self.request("GET", url, timeout=timeout, headers=headers)

    def request(self, method, url, body=None, timeout=PATIENCE, headers=None):
        """`method` `url` through the proxy, with `body` (bytes; sent with its
        Content-Length) if given: HttpReply, as get()."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, url, body=body, headers=headers or {})
            r = c.getresponse()
            try:
                body, complete = r.read(), True
            except http.client.IncompleteRead as e:
                body, complete = e.partial, False
            return HttpReply(r.status, Headers(r.getheaders()), body, complete)
        finally:
            c.close()

    def log(self):
        return _tail(self.cache_log, 200)

    def stop(self):
        if getattr(self, "proc", None) is None:
            return
        if stop_process(self.proc):
            for path in glob.glob(f"/dev/shm/{self.service_name}-*"):
                try:
                    os.remove(path)
                except OSError:
                    pass
        self.proc = None
        self._log.close()


# ---------------------------------------------------------------------------- HTTP origin --

class OriginServer:
    """A loopback HTTP/1.1 server (keep-alive) serving the files of `root` (default
    <tmp>/<name>), counting the requests for each path. POST and PUT are kept in memory, not
    written: `uploads(path)` lists the bodies received whole (Content-Length or chunked) at a
    path, answered 201 "stored N bytes"; `cut(path)` what came of those the client ended
    early. Threads of this process: stop() closes the listening socket and every open
    connection."""

    def __init__(self, tmp, root=None, name="origin"):
        self.root = root or os.path.join(tmp, name)
        os.makedirs(self.root, exist_ok=True)
        self._hits, self._lock, self._conns = {}, threading.Lock(), set()
        self._uploads, self._cut = {}, {}
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = PATIENCE  # an idle keep-alive connection ends after this

            def __init__(self, *a, **kw):
                super().__init__(*a, directory=outer.root, **kw)

            def setup(self):
                super().setup()
                with outer._lock:
                    outer._conns.add(self.connection)

            def finish(self):
                with outer._lock:
                    outer._conns.discard(self.connection)
                super().finish()

            def _count(self):
                path = urllib.parse.urlsplit(self.path).path
                with outer._lock:
                    outer._hits[path] = outer._hits.get(path, 0) + 1

            def do_GET(self):
                self._count()
                super().do_GET()

            def do_HEAD(self):
                self._count()
                super().do_HEAD()

            def _read_body(self):
                """(the request's body, True), or (what came of it, False) if the client
                ended it early."""
                parts = []
                try:
                    if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                        while True:
                            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                            if not size:
                                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                    pass  # trailers
                                return b"".join(parts), True
                            data = self.rfile.read(size + 2)
                            parts.append(data[:size])
                            if len(data) != size + 2:
                                return b"".join(parts), False
                    n = int(self.headers.get("Content-Length", "0"))
                    parts.append(self.rfile.read(n))
                    return parts[0], len(parts[0]) == n
                except (OSError, ValueError):
                    return b"".join(parts), False

            def _upload(self):
                self._count()
                body, whole = self._read_body()
                path = urllib.parse.urlsplit(self.path).path
                with outer._lock:
                    (outer._uploads if whole else outer._cut).setdefault(path, []).append(body)
                if not whole:
                    self.close_connection = True
                    return
                answer = b"stored %d bytes\n" % len(body)
                self.send_response(201)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_POST = do_PUT = _upload

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # A client that goes away mid-answer (Squid cutting a transfer) is no error.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def add(self, name, data):
        """Writes a file to serve; returns its URL."""
        path = os.path.join(self.root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return self.url(name)

    def hits(self, path):
        with self._lock:
            return self._hits.get("/" + path.lstrip("/"), 0)

    def uploads(self, path):
        """The bodies POSTed or PUT whole to `path`, in order."""
        with self._lock:
            return list(self._uploads.get("/" + path.lstrip("/"), []))

    def cut(self, path):
        """What came of each upload to `path` that the client ended early, in order."""
        with self._lock:
            return list(self._cut.get("/" + path.lstrip("/"), []))

    def stop(self):
        if self.httpd is None:
            return
        self.httpd.shutdown()
        self.httpd.server_close()
        with self._lock:
            for c in list(self._conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.thread.join(PATIENCE)
        self.httpd = None


# ------------------------------------------------------------------------- c-icap-client --

@dataclass
class ClientResult:
    returncode: int                  # 0 unless it could not connect (then 255)
    connected: bool
    status_line: str                 # "ICAP/1.0 200 OK", or None
    status: int                      # or None
    headers: Headers                 # ICAP fields (folded ones joined with "\n")
    http_status_line: str            # the encapsulated HTTP head's first line, or None
    http_headers: Headers
    options: dict                    # the "OPTIONS:" summary (OPTIONS only): "Preview": "1024"
    body: bytes                      # the encapsulated body it saved (-o), or None
    stderr: str

    @property
    def unmodified(self):
        return self.status == 204


def _icap_target(target):
    if isinstance(target, str):
        u = urllib.parse.urlsplit(target)
        return u.hostname, u.port or 1344, u.path.lstrip("/")
    host, port, service = target
    return host, int(port), service


def c_icap_client(target, file=None, method=None, *, http_method=None, req_url=None,
                  preview=None, allow204=True, extra_args=(), timeout=PATIENCE):
    """Runs the real c-icap-client against `target` ("icap://host:port/service" or (host,
    port, service)) and parses what it prints. method: "OPTIONS" (the default without a
    file), "RESPMOD" (the default with one) or "REQMOD" (the file as a request body to
    req_url, default http://origin.test/upload; http_method: its -method, the HTTP method).
    preview: -w N, or 0 for -nopreview. allow204=False: -no204.

    What c-icap-client does (0.5.10): headers go to stderr (the ICAP head under "ICAP
    HEADERS:", the encapsulated HTTP head under "RESPMOD HEADERS:", even for a REQMOD, each
    line after a tab; a folded field comes out with its CRs, its continuation lines as sent);
    the body goes to -o FILE (to stdout without -o, followed by two NUL bytes); a 204 prints
    "No modification needed (Allow 204 response)" and writes no file. Its exit status is 0
    for any ICAP answer (404 too) and 255 when it cannot connect."""
    host, port, service = _icap_target(target)
    method = (method or ("RESPMOD" if file else "OPTIONS")).upper()
    args = [C_ICAP_CLIENT, "-i", host, "-p", str(port), "-s", service, "-v"]
    with tempfile.TemporaryDirectory(prefix="pss-icap-client-") as out_dir:
        out = os.path.join(out_dir, "body")
        if method != "OPTIONS":
            if not file:
                raise ValueError(f"{method} needs a file")
            args += ["-f", file, "-o", out]
            if method == "REQMOD":
                args += ["-req", req_url or "http://origin.test/upload"]
            if http_method:
                args += ["-method", http_method]
            if preview == 0:
                args.append("-nopreview")
            elif preview is not None:
                args += ["-w", str(preview)]
            if not allow204:
                args.append("-no204")
        args += list(extra_args)
        run = subprocess.run(args, capture_output=True, timeout=timeout)
        body = None
        if os.path.exists(out):
            with open(out, "rb") as f:
                body = f.read()
    stderr = run.stderr.decode("latin-1")
    sections, current, prev_cr = {}, None, False
    for line in stderr.split("\n"):
        if not line.startswith("\t"):  # a section title ("ICAP HEADERS:"), or its end
            current = line.rstrip()[:-1] if line.rstrip().endswith(":") else None
            if current:
                sections[current] = []
            prev_cr = False
            continue
        if current is None:
            continue
        text = line[1:]
        entries = sections[current]
        if prev_cr and entries:  # the field before was folded: this line continues it
            entries[-1] += "\n" + text.rstrip("\r").strip()
        else:
            entries.append(text.rstrip("\r"))
        prev_cr = line.endswith("\r")

    def head_of(lines):
        if not lines:
            return None, Headers()
        pairs = []
        for l in lines[1:]:
            name, _, value = l.partition(":")
            pairs.append((name, value.strip()))
        return lines[0], Headers(pairs)

    status_line, headers = head_of(sections.get("ICAP HEADERS"))
    http_status_line, http_headers = head_of(sections.get("RESPMOD HEADERS"))
    options = {}
    for l in sections.get("OPTIONS", []):
        name, _, value = l.partition(":")
        options[name.strip()] = value.strip()
    status = None
    if status_line and len(status_line.split()) > 1 and status_line.split()[1].isdigit():
        status = int(status_line.split()[1])
    return ClientResult(run.returncode, "Failed to connect" not in stderr, status_line, status,
                        headers, http_status_line, http_headers, options, body, stderr)
