"""A registry behind a fault proxy: forwards every request to a real registry, except those
a test asks it to break (an HTTP status, a reset connection), and can run a hook on
a matching request (to kill the registry in the middle of a publish)."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Fault:
    method: str | None
    """Only this HTTP method (None: any)."""
    path_part: str
    """Only paths containing this."""
    status: int | None = None
    """Answer with this status (and a registry-style error body)."""
    reset: bool = False
    """Close the connection without an answer."""
    times: int | None = None
    """Only the next N matching requests (None: every one)."""
    stall: float = 0.0
    """Wait this long before answering (past the client's timeout)."""
    hook: Callable[[], None] | None = None
    """Run after forwarding a matching request (the request itself succeeds)."""
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and self.path_part in path \
            and (self.times is None or self.hits < self.times)


@dataclass
class FaultProxy:
    upstream: str
    """host:port of the real registry."""
    faults: list[Fault] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                body = self._body()
                fault = next((f for f in proxy.faults if f.matches(self.command, self.path)), None)
                if fault is not None:
                    fault.hits += 1
                if fault is not None and fault.stall:
                    proxy.log.append(f"{self.command} {self.path} -> stalled {fault.stall} s")
                    time.sleep(fault.stall)
                if fault is not None and fault.hook is None and not fault.stall:
                    proxy.log.append(f"{self.command} {self.path} -> injected "
                                     f"{'reset' if fault.reset else fault.status}")
                    if fault.reset:
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    payload = (b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}'
                               if self.command != "HEAD" else b"")
                    self.send_response(fault.status or 500)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    if fault.status == 401:
                        self.send_header("WWW-Authenticate", 'Basic realm="fault-proxy"')
                    self.end_headers()
                    if payload:
                        self.wfile.write(payload)
                    return
                self._forward(body)
                if fault is not None and fault.hook is not None:
                    fault.hook()

            def _forward(self, body: bytes) -> None:
                connection = http.client.HTTPConnection(proxy.upstream, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"}
                if body or self.command in ("PUT", "POST", "PATCH"):
                    headers["Content-Length"] = str(len(body))
                try:
                    connection.request(self.command, self.path, body=body or None, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                except OSError as exc:  # the registry is gone
                    proxy.log.append(f"{self.command} {self.path} -> upstream down ({exc})")
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                finally:
                    connection.close()
                proxy.log.append(f"{self.command} {self.path} -> {response.status}")
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(key, value)
                # a HEAD's length is the manifest's, which the client uses; others carry their body
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"localhost:{self._server.server_address[1]}"

    def inject(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
