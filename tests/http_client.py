"""A raw-socket HTTP/1.1 client for the tests: byte-exact requests, incremental streaming bodies.

No normalisation of request targets (so path-traversal tests send exactly what they mean), chunked
decoding done here, and full control over when a streaming connection is cut.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import time

from sse import SSEParser


class HTTPError(Exception):
    pass


class ChunkedDecoder:
    """Incremental Transfer-Encoding: chunked decoder."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._remaining = 0  # bytes left in the current chunk's data
        self._state = "size"  # size | data | data-crlf | trailer | done
        self.done = False

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while True:
            if self._state == "size":
                i = self._buf.find(b"\r\n")
                if i < 0:
                    if len(self._buf) > 4096:
                        raise HTTPError("chunk size line too long")
                    break
                line = bytes(self._buf[:i]).split(b";", 1)[0].strip()
                del self._buf[: i + 2]
                try:
                    size = int(line, 16)
                except ValueError:
                    raise HTTPError(f"bad chunk size line {line!r}")
                if size == 0:
                    self._state = "trailer"
                else:
                    self._remaining = size
                    self._state = "data"
            elif self._state == "data":
                if not self._buf:
                    break
                take = min(self._remaining, len(self._buf))
                out += self._buf[:take]
                del self._buf[:take]
                self._remaining -= take
                if self._remaining == 0:
                    self._state = "data-crlf"
            elif self._state == "data-crlf":
                if len(self._buf) < 2:
                    break
                if bytes(self._buf[:2]) != b"\r\n":
                    raise HTTPError("missing CRLF after chunk data")
                del self._buf[:2]
                self._state = "size"
            elif self._state == "trailer":
                i = self._buf.find(b"\r\n")
                if i < 0:
                    break
                line = bytes(self._buf[:i])
                del self._buf[: i + 2]
                if line == b"":
                    self._state = "done"
                    self.done = True
            else:
                break
        return bytes(out)


def build_request(path: str, headers: dict[str, str] | list[tuple[str, str]] | None = None,
                  method: str = "GET", host: str = "127.0.0.1") -> bytes:
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in items}
    if "host" not in names:
        items.insert(0, ("Host", host))
    head = f"{method} {path} HTTP/1.1\r\n".encode("latin-1")
    for k, v in items:
        head += f"{k}: {v}\r\n".encode("latin-1")
    return head + b"\r\n"


class Stream:
    """One HTTP request whose response body is read incrementally."""

    def __init__(self, port: int, path: str, headers=None, timeout: float = 15.0,
                 raw_request: bytes | None = None, rcvbuf: int | None = None) -> None:
        self.port = port
        self.path = path
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(raw_request if raw_request is not None else build_request(path, headers))
        self._raw = bytearray()
        self.status: int | None = None
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self._chunked: ChunkedDecoder | None = None
        self._length: int | None = None
        self._received_body = 0
        self.eof = False          # the body is over (clean or not)
        self.clean_end = False    # it ended as HTTP says it should (last chunk / full length)
        self.closed = False
        self._pending = b""
        self._read_head(timeout)

    # -- head --------------------------------------------------------------------------------
    def _read_head(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self._raw:
            data = self._recv(deadline)
            if not data:
                raise HTTPError(f"connection closed before the response head: {bytes(self._raw)[:200]!r}")
            self._raw += data
        head, _, rest = bytes(self._raw).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers.append((k.strip(), v.strip()))
        te = self.header("transfer-encoding")
        if te and "chunked" in te.lower():
            self._chunked = ChunkedDecoder()
        elif self.header("content-length") is not None:
            self._length = int(self.header("content-length"))
        self._pending = rest

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def _recv(self, deadline: float) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        r, _, _ = select.select([self.sock], [], [], remaining)
        if not r:
            raise TimeoutError("deadline passed")
        try:
            return self.sock.recv(65536)
        except ConnectionResetError:
            return b""

    # -- body --------------------------------------------------------------------------------
    def _decode(self, data: bytes) -> bytes:
        if self._chunked is not None:
            out = self._chunked.feed(data)
            if self._chunked.done:
                self.eof = True
                self.clean_end = True
            return out
        if self._length is not None:
            take = data[: self._length - self._received_body]
            self._received_body += len(take)
            if self._received_body >= self._length:
                self.eof = True
                self.clean_end = True
            return take
        return data

    def read_some(self, timeout: float = 15.0, max_bytes: int | None = None) -> bytes | None:
        """Returns the next body bytes (b"" at end of body); None if nothing came before timeout.

        With max_bytes, at most that many *wire* bytes are consumed from the socket, so a caller can
        cut a connection after an exact number of bytes.
        """
        if self.eof:
            return b""
        if self._pending:
            cut = max_bytes or len(self._pending)
            data, self._pending = self._pending[:cut], self._pending[cut:]
            return self._decode(data)
        deadline = time.monotonic() + timeout
        try:
            remaining = deadline - time.monotonic()
            r, _, _ = select.select([self.sock], [], [], max(0.0, remaining))
            if not r:
                return None
            data = self.sock.recv(max_bytes or 65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            return b""
        return self._decode(data)

    def read_all(self, timeout: float = 30.0) -> bytes:
        deadline = time.monotonic() + timeout
        out = bytearray()
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"body not finished after {timeout}s; got {bytes(out)[:300]!r}")
            data = self.read_some(timeout=left)
            if data:
                out += data
        return bytes(out)

    def close(self, reset: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            if reset:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SSEStream(Stream):
    """A text/event-stream request; events are parsed with the WHATWG parser."""

    def __init__(self, port: int, path: str, last_event_id: str | None = None,
                 headers=None, timeout: float = 15.0, **kw) -> None:
        hdrs = [("Accept", "text/event-stream")]
        if last_event_id is not None:
            hdrs.append(("Last-Event-ID", last_event_id))
        hdrs += list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        super().__init__(port, path, hdrs, timeout=timeout, **kw)
        self.parser = SSEParser()
        self.body = bytearray()

    @property
    def events(self):
        return self.parser.events

    def messages(self):
        return [e for e in self.parser.events if e.type == "message"]

    def texts(self):
        return [e.json["text"] for e in self.messages()]

    def pump(self, timeout: float = 15.0, max_bytes: int | None = None) -> bool:
        """Reads once; returns False at end of body."""
        data = self.read_some(timeout=timeout, max_bytes=max_bytes)
        if data is None:
            return True
        if data:
            self.body += data
            self.parser.feed(data)
        if self.eof:
            self.parser.close()
            return False
        return True

    def wait_for(self, predicate, timeout: float = 20.0, what: str = "condition"):
        """Reads until predicate(self) is true; fails with the events seen on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate(self)
            if result:
                return result
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; events: {self._summary()}")
            if not self.pump(timeout=min(left, 1.0)):
                result = predicate(self)
                if result:
                    return result
                raise AssertionError(f"stream ended while waiting for {what}; events: {self._summary()}")

    def wait_ready(self, timeout: float = 20.0) -> None:
        """The `retry:` preamble is written after the server fixed the stream's start position."""
        self.wait_for(lambda s: s.parser.retry is not None, timeout, "the retry: preamble")

    def wait_messages(self, n: int, timeout: float = 20.0):
        self.wait_for(lambda s: len(s.messages()) >= n, timeout, f"{n} message events")
        return self.messages()

    def wait_events(self, n: int, timeout: float = 20.0):
        self.wait_for(lambda s: len(s.events) >= n, timeout, f"{n} events")
        return self.events

    def _summary(self) -> str:
        evs = [(e.type, e.data[:120]) for e in self.parser.events]
        if len(evs) > 40:
            evs = evs[:20] + [("...", f"{len(evs) - 40} more")] + evs[-20:]
        return repr(evs)


class LineStream(Stream):
    """A streaming body split into LF-terminated lines (NDJSON or plain text)."""

    def __init__(self, port: int, path: str, accept: str | None = None, headers=None, **kw) -> None:
        hdrs = [("Accept", accept)] if accept else []
        hdrs += list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        super().__init__(port, path, hdrs, **kw)
        self.body = bytearray()

    def lines(self) -> list[bytes]:
        return bytes(self.body).split(b"\n")[:-1]

    def wait_lines(self, n: int, timeout: float = 20.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.lines()) < n:
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                raise AssertionError(f"wanted {n} lines; got {self.lines()!r}")
            data = self.read_some(timeout=min(left, 1.0))
            if data:
                self.body += data
        return self.lines()


class Response:
    def __init__(self, status: int, reason: str, headers, body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.body[:200]!r}>"


def request(port: int, path: str, headers=None, method: str = "GET", timeout: float = 15.0,
            raw_request: bytes | None = None) -> Response:
    """A complete (non-streaming) request; the body must end within the timeout."""
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if not any(k.lower() == "connection" for k, _ in hdrs):
        hdrs.append(("Connection", "close"))
    if raw_request is None and method != "GET":
        raw_request = build_request(path, hdrs + [("Content-Length", "0")], method=method)
    with Stream(port, path, hdrs, timeout=timeout, raw_request=raw_request) as s:
        body = s.read_all(timeout=timeout)
        return Response(s.status, s.reason, s.headers, body)


def metric(port: int, name: str) -> float:
    body = request(port, "/metrics").body.decode()
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"metric {name} not found in {body!r}")
