"""A fault-injecting HTTP proxy in front of the local S3 server, on 127.0.0.1.

Tests point ``AWS_ENDPOINT_URL_S3`` at the proxy and add rules: the next ``times`` requests
whose method and path match get an S3 error response (503 SlowDown, 500 InternalError, 403
AccessDenied, ...) or a dropped connection instead of reaching the server. Everything else is
forwarded unchanged, so boto3's real retry logic meets real failures.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_ERROR_CODES = {
    403: "AccessDenied",
    500: "InternalError",
    503: "SlowDown",
}


@dataclass
class FaultRule:
    """Fail the next ``times`` requests with ``method`` whose path contains ``path_contains``.

    ``status`` 0 drops the connection without a response (as a reset load balancer would).
    """

    method: str
    path_contains: str
    status: int
    times: int
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.hits < self.times and method == self.method and self.path_contains in path


@dataclass
class FaultProxy:
    """The proxy's address, its rules and a log of the requests it saw."""

    upstream: str
    url: str = ""
    rules: list[FaultRule] = field(default_factory=list)
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, method: str, path_contains: str, status: int, times: int = 1) -> FaultRule:
        rule = FaultRule(method, path_contains, status, times)
        with self.lock:
            self.rules.append(rule)
        return rule

    def take_fault(self, method: str, path: str) -> FaultRule | None:
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    def record(self, method: str, path: str, status: int) -> None:
        with self.lock:
            self.requests.append((method, path, status))


class _Handler(BaseHTTPRequestHandler):
    proxy: FaultProxy  # set on the subclass _handler makes for one proxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        body = self._body()
        rule = self.proxy.take_fault(self.command, self.path)
        if rule is None:
            self._forward(body)
            return
        self.proxy.record(self.command, self.path, rule.status)
        if rule.status == 0:
            self.close_connection = True
            self.connection.close()
            return
        self._send_error(rule.status)

    def _send_error(self, status: int) -> None:
        code = _ERROR_CODES.get(status, "ServiceUnavailable")
        payload = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{code}</Code><Message>injected by the test proxy</Message>"
            "<RequestId>fault</RequestId></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _forward(self, body: bytes) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
        headers["Content-Length"] = str(len(body))
        upstream = urlsplit(self.proxy.upstream)
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            self.proxy.record(self.command, self.path, response.status)
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(key, value)
            # A HEAD response has no body but tells the object's size: pass it on.
            length = response.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        finally:
            connection.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"proxy": proxy})


def start_proxy(upstream: str) -> tuple[FaultProxy, ThreadingHTTPServer]:
    """Start a proxy to ``upstream`` on a free loopback port (call ``server.shutdown()`` to stop)."""
    proxy = FaultProxy(upstream=upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return proxy, server
