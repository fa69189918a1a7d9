#!/usr/bin/python3
"""`pssupervise webhook` and malformed HTTP, over raw loopback sockets (issue 14): each request
the parser refuses, and each whose framing a proxy in front of us could read otherwise
(request smuggling), gets its status (400, 501 or 505) and the connection is closed; the
server answers a well-formed request afterwards."""
import json
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import PATIENCE  # noqa: E402
from test_webhook import WebhookTestCase  # noqa: E402

BOTH = "bad request: both Content-Length and Transfer-Encoding"
BAD_CL = "bad request: invalid Content-Length"
BARE_LF = "bad request: a line ends in LF without CR"
BAD_FIELD = "bad request: invalid header line (no colon, or an invalid name)"

# name, bytes sent, the status and the error expected back.
MALFORMED = [
    ("Content-Length, then Transfer-Encoding",
     b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400, BOTH),
    ("Transfer-Encoding, then Content-Length",
     b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
     b"0\r\n\r\n", 400, BOTH),
    ("a Transfer-Encoding other than chunked, with a Content-Length",
     b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n"
     b"hello", 400, BOTH),
    ("a Transfer-Encoding other than chunked, and a smuggled request as its body",
     b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"
     b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", 400,
     "bad request: Transfer-Encoding does not end with chunked"),
    ("a coding under chunked",
     b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501,
     "transfer coding 'gzip' not implemented (only chunked)"),
    ("two different Content-Lengths",
     b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400,
     "bad request: different Content-Length values"),
    ("a negative Content-Length",
     b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, BAD_CL),
    ("a 20-digit Content-Length",
     b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400,
     BAD_CL),
    ("bare LF line ends", b"GET / HTTP/1.1\nHost: a\n\n", 400, BARE_LF),
    ("a header ended by a bare LF", b"GET / HTTP/1.1\r\nHost: a\n\r\n", 400, BARE_LF),
    ("a NUL in a header", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\0b\r\n\r\n", 400,
     "bad request: invalid character in a header value"),
    ("a header without a colon", b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400,
     BAD_FIELD),
    ("an HTTP/0.9 request line", b"GET /\r\n", 400,
     "bad request: no HTTP version in the request line (HTTP/0.9 is not supported)"),
    ("an HTTP/2.0 request line", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505,
     "HTTP/2.0 is not supported: use HTTP/1.1"),
    ("the HTTP/2 connection preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505,
     "HTTP/2.0 is not supported: use HTTP/1.1"),
    ("not HTTP (a TLS ClientHello)", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 400,
     "bad request: invalid method"),
]


def parse_responses(data):
    """The HTTP/1.1 responses in `data`, as (status, headers with lower-case names, body)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError(f"not an HTTP response: {data!r}")
        lines = head.decode("latin-1").split("\r\n")
        version, status = lines[0].split(" ")[:2]
        if version != "HTTP/1.1":
            raise AssertionError(f"not an HTTP/1.1 status line: {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        n = int(headers["content-length"])
        out.append((int(status), headers, rest[:n]))
        data = rest[n:]
    return out


class MalformedRequestTest(WebhookTestCase):
    def exchange(self, data, half_close=False):
        """Sends `data` on a new connection, and returns every byte the server sends until it
        closes the connection (the test fails if it does not close it)."""
        port = int(self.base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as s:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
            received = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    self.fail(f"the connection is still open after {PATIENCE} s; "
                              f"received {received!r}")
                if not chunk:
                    return received
                received += chunk

    def assertRefused(self, data, status, error, half_close=False):
        responses = parse_responses(self.exchange(data, half_close))
        self.assertEqual(len(responses), 1, responses)
        got, headers, body = responses[0]
        self.assertEqual((got, json.loads(body).get("error")), (status, error))
        self.assertEqual(headers.get("connection"), "close")

    def test_each_malformed_request_is_answered_then_closed(self):
        self.start()
        for name, data, status, error in MALFORMED:
            with self.subTest(name):
                self.assertRefused(data, status, error)
        # The server lives on, and counted each answer.
        status, _, body = self.request("/")
        self.assertEqual((status, body), (200, b'{"status":"OK"}'))
        metrics = self.metrics()
        for code in (400, 501, 505):
            n = sum(1 for _, _, s, _ in MALFORMED if s == code)
            self.assertIn(f'pss_http_requests_total{{code="{code}"}} {n}\n', metrics)

    def test_a_request_cut_short_by_the_client_is_answered(self):
        """The client closed its side mid-header: it may still read our answer."""
        self.start()
        self.assertRefused(b"GET / HTTP/1.1\r\nHost", 400,
                           "bad request: the connection was closed before the request's end",
                           half_close=True)

    def test_nothing_sent_is_closed_without_an_answer(self):
        self.start()
        self.assertEqual(self.exchange(b"", half_close=True), b"")

    def test_a_malformed_request_after_a_good_one_on_the_same_connection(self):
        """Keep-alive: the first request is answered and the connection kept, the second is
        refused and the connection closed; nothing after it is read."""
        self.start()
        data = (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"
                b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n")
        responses = parse_responses(self.exchange(data))
        self.assertEqual([(s, h.get("connection")) for s, h, _ in responses],
                         [(200, None), (400, "close")], responses)


if __name__ == "__main__":
    unittest.main()
