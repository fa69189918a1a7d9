"""A small raw ICAP (RFC 3507) client for tests and benchmarks: OPTIONS and RESPMOD with or
without a preview, keep-alive, answers parsed (folded fields joined with "\\n", Encapsulated
offsets followed, chunked bodies decoded), and raw(): any bytes sent as they are, what comes
back returned, for malformed-input tests. Every read and wait is bounded."""
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from common import PATIENCE

CRLF = b"\r\n"


class IcapError(Exception):
    """An answer our raw client cannot parse, or a connection closed before the answer ended."""



class Headers(dict):
    """ICAP or HTTP header fields in the order received, looked up case-insensitively. A
    folded field's continuation lines are joined to it with "\\n", each stripped of its
    leading white space. A repeated field keeps its first value here; get_all() has every
    one."""

    def __init__(self, pairs=()):
        super().__init__()
        self._names = {}
        self._all = {}
        for name, value in pairs:
            key = name.lower()
            self._all.setdefault(key, []).append(value)
            if key not in self._names:
                self._names[key] = name
                super().__setitem__(name, value)

    def __getitem__(self, name):
        return super().__getitem__(self._names[name.lower()])

    def __contains__(self, name):
        return isinstance(name, str) and name.lower() in self._names

    def get(self, name, default=None):
        return self[name] if name in self else default

    def get_all(self, name):
        return list(self._all.get(name.lower(), []))


def parse_head(head):
    """(start line, Headers) of a head (bytes, without its final empty line). Lines end with
    CRLF; a line starting with SP or HTAB continues the field before it."""
    lines = head.decode("latin-1").split("\r\n")
    pairs = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            if not pairs:
                raise IcapError(f"continuation line before any field: {head!r}")
            name, value = pairs[-1]
            pairs[-1] = (name, value + "\n" + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise IcapError(f"not a header field: {line!r} in {head!r}")
        pairs.append((name, value.strip()))
    return lines[0], Headers(pairs)


def parse_encapsulated(value):
    """[(section, offset)] of an Encapsulated field ("res-hdr=0, res-body=161")."""
    out = []
    for part in value.split(","):
        name, sep, offset = part.strip().partition("=")
        if not sep or not offset.strip().isdigit():
            raise IcapError(f"bad Encapsulated: {value!r}")
        out.append((name.strip().lower(), int(offset)))
    offsets = [o for _, o in out]
    if offsets != sorted(offsets):
        raise IcapError(f"Encapsulated offsets not ascending: {value!r}")
    return out


def chunked(data, chunk=64 * 1024, last=b"0\r\n\r\n"):
    """data in chunked transfer coding, ended by `last` (b"0; ieof\\r\\n\\r\\n" at the end of a
    preview that holds the whole body; b"" for a part that does not end the body)."""
    out = bytearray()
    for i in range(0, len(data), chunk):
        piece = data[i:i + chunk]
        out += b"%x\r\n" % len(piece) + piece + CRLF
    return bytes(out + last)


@dataclass
class IcapResponse:
    status_line: str                 # "ICAP/1.0 200 OK"
    status: int                      # 200
    headers: Headers                 # ICAP fields
    http_head: bytes = None          # encapsulated res-hdr (else req-hdr), as sent, or None
    http_body: bytes = None          # encapsulated body, de-chunked, or None
    sections: dict = field(default_factory=dict)  # every encapsulated head: name -> bytes
    continued: bool = False          # a "100 Continue" came first (and the rest was sent)
    raw: bytes = b""                 # the bytes of this answer (after any 100 Continue)
    send_error: str = None           # the server stopped reading before the request ended

    @property
    def http(self):
        """The encapsulated HTTP message (head, then de-chunked body), or None."""
        if self.http_head is None and self.http_body is None:
            return None
        return (self.http_head or b"") + (self.http_body or b"")

    @property
    def http_status(self):
        if not self.http_head:
            return None
        return int(self.http_head.split(b" ", 2)[1])


class _Reader:
    """Buffered reads from a socket; every read bounded by the socket's timeout."""

    def __init__(self, sock):
        self.sock, self.buf, self.seen = sock, bytearray(), bytearray()

    def _fill(self, what):
        data = self.sock.recv(1 << 16)
        if not data:
            got = repr(bytes(self.seen))[:4000]
            raise IcapError(f"connection closed while reading {what}; got {got}")
        self.buf += data

    def until(self, delim, what, limit=1 << 20):
        while (i := self.buf.find(delim)) < 0:
            if len(self.buf) > limit:
                raise IcapError(f"no {delim!r} in the first {limit} bytes of {what}")
            self._fill(what)
        return self.take(i + len(delim))

    def exact(self, n, what):
        while len(self.buf) < n:
            self._fill(what)
        return self.take(n)

    def take(self, n):
        out = bytes(self.buf[:n])
        del self.buf[:n]
        self.seen += out
        return out

    def chunked_body(self, what):
        body = bytearray()
        while True:
            line = self.until(CRLF, what)
            size_text = line[:-2].split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise IcapError(f"bad chunk size {line!r} in {what}") from None
            if size == 0:
                while self.until(CRLF, what) != CRLF:  # trailer fields
                    pass
                return bytes(body)
            body += self.exact(size, what)
            if self.exact(2, what) != CRLF:
                raise IcapError(f"chunk of {size} bytes not followed by CRLF in {what}")


class IcapConnection:
    """One connection to an ICAP server: requests one after the other (keep-alive)."""

    def __init__(self, host, port, service, timeout=PATIENCE):
        self.host, self.port, self.service = host, port, service
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = _Reader(self.sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def url(self, service=None):
        return f"icap://{self.host}:{self.port}/{service or self.service}"

    def send(self, data):
        self.sock.sendall(data)

    def peer_closed(self, timeout=PATIENCE):
        """True once the server has closed this connection (waits up to `timeout`); False if
        it sends something instead."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except ConnectionResetError:
            return True

    def options(self, service=None):
        """(status line, Headers) of an OPTIONS."""
        self.send(f"OPTIONS {self.url(service)} ICAP/1.0\r\nHost: {self.host}:{self.port}\r\n"
                  "Encapsulated: null-body=0\r\n\r\n".encode())
        r = self.read_response()
        return r.status_line, r.headers

    def respmod(self, body, preview=None, allow204=True, service=None, **request_options):
        """Sends a RESPMOD of `body` (bytes; None: no body) and returns the final IcapResponse.
        preview=n sends the first n bytes (with ieof if that is all), then the rest only after
        a "100 Continue". Other options: see respmod_request()."""
        first, rest = respmod_parts(self.url(service), body, preview=preview, allow204=allow204,
                                    host=f"{self.host}:{self.port}", **request_options)
        sender = _Sender(self.sock, first)
        r = self.read_response()
        continued = False
        if r.status == 100:
            if rest is None:
                raise IcapError(f"100 Continue without a preview to continue: {r.raw!r}")
            sender.join()
            sender = _Sender(self.sock, rest)
            continued = True
            r = self.read_response()
        sender.join()
        r.continued, r.send_error = continued, sender.error
        return r

    def read_response(self):
        """One answer: head, encapsulated heads by their offsets, and a chunked body if any."""
        self.reader.seen = bytearray()
        head = self.reader.until(b"\r\n\r\n", "the ICAP head")[:-4]
        status_line, headers = parse_head(head)
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("ICAP/") or not parts[1].isdigit():
            raise IcapError(f"not an ICAP status line: {status_line!r}")
        r = IcapResponse(status_line, int(parts[1]), headers)
        if r.status != 100 and "Encapsulated" in headers:
            sections = parse_encapsulated(headers["Encapsulated"])
            for (name, start), nxt in zip(sections, sections[1:] + [None]):
                if name.endswith("-body"):
                    if name != "null-body":
                        r.http_body = self.reader.chunked_body("the encapsulated body")
                    break
                if nxt is None:
                    raise IcapError(f"Encapsulated ends with a head: {headers['Encapsulated']}")
                r.sections[name] = self.reader.exact(nxt[1] - start, f"the encapsulated {name}")
            r.http_head = r.sections.get("res-hdr", r.sections.get("req-hdr"))
        r.raw = bytes(self.reader.seen)
        return r


class _Sender(threading.Thread):
    """Sends bytes while the caller reads the answer: a server may answer (and stop reading)
    before the request ends; the send error is then kept, not raised."""

    def __init__(self, sock, data):
        super().__init__(daemon=True)
        self.sock, self.data, self.error = sock, data, None
        self.start()

    def run(self):
        try:
            self.sock.sendall(self.data)
        except OSError as e:
            self.error = f"{type(e).__name__}: {e}"

    def join(self, timeout=PATIENCE):
        super().join(timeout)
        if self.is_alive():
            raise IcapError(f"the server did not read the request in {timeout} s")


def respmod_parts(url, body, preview=None, allow204=True, host=None,
                  http_url="http://origin.test/file", req_hdr=True, content_type=None,
                  extra_headers=(), http_headers=(), chunk=64 * 1024):
    """(first, rest) bytes of a RESPMOD: `first` is the ICAP head, the encapsulated HTTP heads
    and the body (or its preview, ended by "0" or "0; ieof"); `rest` is what follows a
    "100 Continue" (None when nothing does). req_hdr=False leaves the HTTP request head out;
    extra_headers / http_headers: ("Name: value", ...) for the ICAP / HTTP response heads."""
    u = urllib.parse.urlsplit(url)
    host = host or u.netloc
    req = (f"GET {http_url} HTTP/1.1\r\nHost: {urllib.parse.urlsplit(http_url).netloc}\r\n\r\n"
           .encode() if req_hdr else b"")
    res_lines = ["HTTP/1.1 200 OK"]
    if content_type:
        res_lines.append(f"Content-Type: {content_type}")
    if body is not None:
        res_lines.append(f"Content-Length: {len(body)}")
    res = ("\r\n".join(res_lines + list(http_headers)) + "\r\n\r\n").encode()
    parts = []
    if req_hdr:
        parts.append(("req-hdr", 0))
    parts.append(("res-hdr", len(req)))
    parts.append(("res-body" if body is not None else "null-body", len(req) + len(res)))
    icap = [f"RESPMOD {url} ICAP/1.0", f"Host: {host}",
            "Encapsulated: " + ", ".join(f"{n}={o}" for n, o in parts)]
    if allow204:
        icap.append("Allow: 204")
    if preview is not None and body is not None:
        icap.append(f"Preview: {preview}")
    icap += list(extra_headers)
    head = ("\r\n".join(icap) + "\r\n\r\n").encode() + req + res
    if body is None:
        return head, None
    if preview is None:
        return head + chunked(body, chunk), None
    if len(body) <= preview:
        return head + chunked(body, chunk, b"0; ieof\r\n\r\n"), None
    return head + chunked(body[:preview], chunk), chunked(body[preview:], chunk)


def respmod_request(url, body, **options):
    """The whole RESPMOD as bytes, as sent when every preview is continued: a valid request to
    cut or corrupt for tests of malformed input (send it with raw())."""
    first, rest = respmod_parts(url, body, **options)
    return first + (rest or b"")


class IcapClient:
    """A raw ICAP client for one server (host, port, default service): each call on its own
    connection; connect() for several requests on one."""

    def __init__(self, host, port, service, timeout=PATIENCE):
        self.host, self.port, self.service, self.timeout = host, port, service, timeout

    @classmethod
    def from_url(cls, url, timeout=PATIENCE):
        u = urllib.parse.urlsplit(url)
        return cls(u.hostname, u.port or 1344, u.path.lstrip("/"), timeout)

    @property
    def url(self):
        return f"icap://{self.host}:{self.port}/{self.service}"

    def connect(self):
        return IcapConnection(self.host, self.port, self.service, self.timeout)

    def options(self, service=None):
        """(status line, Headers) of an OPTIONS."""
        with self.connect() as c:
            return c.options(service)

    def respmod(self, body, preview=None, allow204=True, service=None, **request_options):
        """IcapResponse to a RESPMOD of `body`; see IcapConnection.respmod()."""
        with self.connect() as c:
            return c.respmod(body, preview=preview, allow204=allow204, service=service,
                             **request_options)

    def raw(self, data, timeout=10, until=None, half_close=False):
        """Sends `data` as is (sent by a thread: the server may stop reading) and returns the
        bytes that come back until the server closes, `until` (bytes) has arrived, or
        `timeout` seconds have passed, whichever is first. half_close: shutdown(SHUT_WR) after
        sending (the server sees end-of-stream)."""
        out = bytearray()
        deadline = time.monotonic() + timeout
        with socket.create_connection((self.host, self.port), timeout=self.timeout) as s:
            def send():
                try:
                    s.sendall(data)
                    if half_close:
                        s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            t = threading.Thread(target=send, daemon=True)
            t.start()
            while not (until and until in out):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                s.settimeout(left)
                try:
                    data_in = s.recv(1 << 16)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    break
                if not data_in:
                    break
                out += data_in
        t.join(PATIENCE)
        return bytes(out)


def threat_names(headers):
    """The threat names an ICAP answer's fields carry: X-Infection-Found's Threat=,
    X-Violations-Found's names (second line of each 4-line entry), X-Virus-ID."""
    names = []
    for v in headers.get_all("X-Infection-Found"):
        m = re.search(r"Threat=([^;]+);?", v)
        if m:
            names.append(m.group(1).strip())
    for v in headers.get_all("X-Violations-Found"):
        lines = v.split("\n")
        names += [lines[i] for i in range(2, len(lines), 4)]
    names += [v for v in headers.get_all("X-Virus-ID") if v]
    return sorted(set(names))
