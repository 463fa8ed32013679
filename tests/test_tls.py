"""HTTPS with HTTP/2 and HTTP/1.1 (--tls-cert/--tls-key): curl negotiates h2 and streams live, many
streams share one connection, HTTP/1.1 clients still work, SIGHUP serves a replaced certificate to
new connections (a broken one is refused and the old one kept), a stream that stops reading is
killed without its connection's other streams, bad certificates stop the start, plain HTTP is
unchanged."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from server import append, wait_closed_by_server, wait_until
from tls_support import handshake, make_identity


def tls_args(identity) -> list[str]:
    return ["--tls-cert", str(identity.cert), "--tls-key", str(identity.key)]


def url(srv, path: str) -> str:
    return f"https://127.0.0.1:{srv.port}{path}"


def curl(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=timeout)


def established(port: int) -> int:
    """TCP connections the server holds on `port` (its side of each)."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return len(out.splitlines())


def metric(srv, ca, name: str) -> float:
    body = curl("--cacert", str(ca), url(srv, "/metrics")).stdout.decode()
    return float(next(line.split()[-1] for line in body.splitlines() if line.startswith(name + " ")))


class CurlStream:
    """A running curl asking for SSE, its output collected as it arrives (headers first: -D -)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(["curl", "-sS", "-N", "-D", "-", "-H", "Accept: text/event-stream", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.out = bytearray()

    def wait_for(self, needle: bytes, timeout: float = 15, count: int = 1) -> bytes:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while self.out.count(needle) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {needle!r} ×{count} within {timeout}s; got {bytes(self.out[-2000:])!r}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError(f"curl ended ({self.proc.wait()}) before {needle!r}: {bytes(self.out)!r} "
                                         f"{self.proc.stderr.read()!r}")
                self.out += chunk
        return bytes(self.out)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def identity(tmp_path):
    return make_identity(tmp_path / "tls", "server")


@pytest.fixture
def https(tailsse, logdir, identity):
    """tailsse serving app.log over HTTPS."""
    log = logdir / "app.log"
    log.write_bytes(b"before\n")
    return tailsse({"app": log}, extra=tls_args(identity)), log


def test_curl_negotiates_http2_and_streams_live_lines(https, identity):
    srv, log = https
    assert handshake(srv.port, identity.ca, ["h2", "http/1.1"])[1] == "h2"
    listing = curl("--cacert", str(identity.ca), "--http2", "-w", "\n%{http_version}", url(srv, "/sources"))
    body, version = listing.stdout.decode().rsplit("\n", 1)
    assert version == "2" and [s["name"] for s in json.loads(body)] == ["app"], listing

    stream = CurlStream("--cacert", str(identity.ca), "--http2", url(srv, "/sources/app"))
    try:
        head = stream.wait_for(b"\r\n\r\n")
        assert head.startswith(b"HTTP/2 200"), head
        assert b"content-type: text/event-stream" in head.lower()
        append(log, "live over h2\n")
        stream.wait_for(b'"text":"live over h2"')
        append(log, "and another\n")
        stream.wait_for(b'"text":"and another"')
    finally:
        stream.close()


def test_twelve_streams_share_one_connection_and_all_get_live_lines(https, identity):
    srv, log = https
    urls = [url(srv, f"/sources/app?tail=0&n={i}") for i in range(12)]
    streams = CurlStream("--cacert", str(identity.ca), "--http2", "-Z", "--parallel-max", "12", *urls)
    try:
        streams.wait_for(b"HTTP/2 200", count=12)
        wait_until(lambda: metric(srv, identity.ca, "tailsse_streams") == 12, what="12 open streams")
        append(log, "to all twelve\n")
        streams.wait_for(b'"text":"to all twelve"', count=12)
        # One connection for the 12 streams (the /metrics requests above have closed theirs).
        wait_until(lambda: established(srv.port) == 1, what="a single established connection")
    finally:
        streams.close()


def test_http1_clients_still_work_over_tls(https, identity):
    srv, log = https
    assert handshake(srv.port, identity.ca, ["http/1.1"])[1] == "http/1.1"
    assert handshake(srv.port, identity.ca)[1] is None  # no ALPN at all: HTTP/1.1
    listing = curl("--cacert", str(identity.ca), "--http1.1", "-w", "\n%{http_version}", url(srv, "/sources"))
    assert listing.stdout.decode().rsplit("\n", 1)[1] == "1.1", listing
    stream = CurlStream("--cacert", str(identity.ca), "--http1.1", url(srv, "/sources/app"))
    try:
        assert stream.wait_for(b"\r\n\r\n").startswith(b"HTTP/1.1 200 OK\r\n")
        append(log, "live over http/1.1 and tls\n")
        stream.wait_for(b'"text":"live over http/1.1 and tls"')
    finally:
        stream.close()


def test_plain_http_is_unchanged(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log})
    # curl asks for h2c with an Upgrade header; the plain server answers in HTTP/1.1.
    out = curl("--http2", "-w", "\n%{http_version}", srv.url("/sources")).stdout.decode()
    assert out.rsplit("\n", 1)[1] == "1.1"
    tls = curl("--cacert", "/dev/null", f"https://127.0.0.1:{srv.port}/sources")
    assert tls.returncode != 0  # no TLS here


def test_sighup_serves_a_replaced_certificate_to_new_connections(https, identity, tmp_path):
    srv, log = https
    old = identity.der()
    assert handshake(srv.port, identity.ca)[0] == old
    open_stream = CurlStream("--cacert", str(identity.ca), "--http2", url(srv, "/sources/app"))
    try:
        open_stream.wait_for(b"\r\n\r\n")
        renewed = make_identity(tmp_path / "renewed", "server")  # another CA, another key
        # Like certbot's renewal: the new files take the configured names by rename.
        os.replace(renewed.cert, identity.cert)
        os.replace(renewed.key, identity.key)
        srv.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "TLS certificate reloaded" in srv.log_text(), what="the reload")
        served, protocol = handshake(srv.port, renewed.ca, ["h2"])
        assert served == ssl.PEM_cert_to_DER_cert(identity.cert.read_text()) and served != old
        assert protocol == "h2"
        # The connection made before the reload goes on with its certificate.
        append(log, "after the reload\n")
        open_stream.wait_for(b'"text":"after the reload"')
        assert "reload failed" not in srv.log_text()
    finally:
        open_stream.close()


@pytest.mark.parametrize("breakage", ["garbage key", "another certificate's key", "missing certificate"])
def test_sighup_with_a_broken_pair_keeps_serving_the_old_certificate(https, identity, tmp_path, breakage):
    srv, log = https
    old = identity.der()
    if breakage == "garbage key":
        identity.key.write_text("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
    elif breakage == "another certificate's key":
        other = make_identity(tmp_path / "other", "other")
        identity.key.write_bytes(other.key.read_bytes())
    else:
        identity.cert.unlink()
    srv.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "TLS certificate reload failed" in srv.log_text(), what="the failed reload")
    assert handshake(srv.port, identity.ca)[0] == old
    assert srv.running()
    stream = CurlStream("--cacert", str(identity.ca), "--http2", url(srv, "/sources/app"))
    try:
        append(log, "still served\n")
        stream.wait_for(b'"text":"still served"')
    finally:
        stream.close()


def _start_fails(tailsse, logdir, args: list[str]) -> str:
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log}, start=False, extra=args)
    result = subprocess.run(srv.args, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert b"listening" not in result.stdout
    return result.stderr.decode()


def test_bad_certificates_stop_the_start_with_a_clear_error(tailsse, logdir, identity, tmp_path):
    other = make_identity(tmp_path / "other", "other")
    missing = str(tmp_path / "missing.pem")
    err = _start_fails(tailsse, logdir, ["--tls-cert", missing, "--tls-key", str(identity.key)])
    assert f"{missing}: cannot read: No such file or directory" in err, err

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello\n")
    err = _start_fails(tailsse, logdir, ["--tls-cert", str(garbage), "--tls-key", str(identity.key)])
    assert f"{garbage}: no PEM certificate" in err, err
    err = _start_fails(tailsse, logdir, ["--tls-cert", str(identity.cert), "--tls-key", str(garbage)])
    assert f"{garbage}: no PEM private key" in err, err

    err = _start_fails(tailsse, logdir, ["--tls-cert", str(identity.cert), "--tls-key", str(other.key)])
    assert "does not belong to the certificate" in err, err

    err = _start_fails(tailsse, logdir, ["--tls-cert", str(identity.cert)])
    assert "--tls-cert needs tls-key too" in err, err
    err = _start_fails(tailsse, logdir, ["--tls-key", str(identity.key)])
    assert "--tls-key needs tls-cert too" in err, err


def test_configuration_file_keys_with_paths_relative_to_the_file(tailsse, logdir, tmp_path):
    conf_dir = tmp_path / "etc"
    made = make_identity(conf_dir, "site")
    conf = conf_dir / "tailsse.conf"
    conf.write_text(f"file = app={logdir / 'app.log'}\ntls-cert = site.pem\ntls-key = site.key\n")
    (logdir / "app.log").write_bytes(b"")
    srv = tailsse({}, extra=["--config", str(conf)])
    assert handshake(srv.port, made.ca, ["h2"]) == (made.der(), "h2")

    conf.write_text(f"file = app={logdir / 'app.log'}\ntls-cert = site.pem\n")
    result = subprocess.run([*srv.args[:1], "--config", str(conf), "--listen", "127.0.0.1:0"],
                            capture_output=True, timeout=60)
    assert result.returncode != 0 and f"{conf}:2: tls-cert needs tls-key too" in result.stderr.decode()


def test_a_stream_that_stops_reading_is_killed_alone_over_http2(tailsse, logdir, identity):
    """HTTP/2 flow control is per stream: a client that stops reading one stream (sends no
    WINDOW_UPDATE for it) stalls only that stream's writes; the write timeout resets that stream
    and the connection's other stream goes on."""
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings

    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log}, write_timeout=1, heartbeat=0.5, extra=tls_args(identity))
    context = ssl.create_default_context(cafile=str(identity.ca))
    context.set_alpn_protocols(["h2"])
    sock = context.wrap_socket(socket.create_connection(("127.0.0.1", srv.port)), server_hostname="localhost")
    assert sock.selected_alpn_protocol() == "h2"
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 4096})
    conn.increment_flow_control_window(1 << 30)
    headers = [(":method", "GET"), (":scheme", "https"), (":authority", f"127.0.0.1:{srv.port}"),
               (":path", "/sources/app?tail=0"), ("accept", "text/event-stream")]
    reading, stalled = conn.get_next_available_stream_id(), None
    conn.send_headers(reading, headers, end_stream=True)
    stalled = conn.get_next_available_stream_id()
    conn.send_headers(stalled, headers, end_stream=True)
    sock.sendall(conn.data_to_send())

    received = {reading: bytearray(), stalled: bytearray()}
    resets: dict[int, object] = {}
    stop = threading.Event()

    def writer():
        line = "x" * 400
        i = 0
        while not stop.is_set():
            append(log, f"{i} {line}\n")
            i += 1
            time.sleep(0.002)

    def pump(until, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; resets {resets}")
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            assert data, "the server closed the whole connection"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    received[event.stream_id] += event.data
                    if event.stream_id == reading:
                        conn.acknowledge_received_data(event.flow_controlled_length, reading)
                    else:  # the connection's window only: the stalled stream's own window runs dry
                        conn.increment_flow_control_window(event.flow_controlled_length)
                elif isinstance(event, h2.events.StreamReset):
                    resets[event.stream_id] = event.error_code
                elif isinstance(event, h2.events.ConnectionTerminated):
                    raise AssertionError(f"the connection ended: {event}")
            sock.sendall(conn.data_to_send())

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        pump(lambda: stalled in resets, 20, "the stalled stream's reset")
        assert reading not in resets
        assert len(received[stalled]) <= 4096 + 1024
        stop.set()
        thread.join()
        append(log, "the reader goes on\n")
        pump(lambda: b'"text":"the reader goes on"' in received[reading], 10, "a line on the reading stream")
        assert "closed clients that stopped reading" in srv.log_text()
    finally:
        stop.set()
        sock.close()


def test_a_connection_that_stops_reading_altogether_is_closed(tailsse, logdir, identity):
    """A client that reads nothing on its HTTP/2 connection (and so never runs out of flow-control
    window: it granted all it could) stalls every stream on it; the streams are reset after the
    write timeout and the connection itself is closed, not left holding its unsent bytes."""
    import h2.config
    import h2.connection
    import h2.settings

    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log}, write_timeout=1, heartbeat=0.5, extra=tls_args(identity))
    context = ssl.create_default_context(cafile=str(identity.ca))
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", srv.port))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock = context.wrap_socket(raw, server_hostname="localhost")
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
    conn.increment_flow_control_window(2**31 - 1 - 65535)
    for _ in range(2):
        conn.send_headers(conn.get_next_available_stream_id(),
                          [(":method", "GET"), (":scheme", "https"), (":authority", f"127.0.0.1:{srv.port}"),
                           (":path", "/sources/app?tail=0"), ("accept", "text/event-stream")], end_stream=True)
    sock.sendall(conn.data_to_send())
    wait_until(lambda: metric(srv, identity.ca, "tailsse_streams") == 2, what="two open streams")
    try:
        line = "y" * 1000 + "\n"
        deadline = time.monotonic() + 30
        while established(srv.port) > 0:  # the metrics requests' connections close by themselves
            assert time.monotonic() < deadline, "the stalled connection is still open"
            append(log, line * 50)
            time.sleep(0.02)
        assert metric(srv, identity.ca, "tailsse_streams") == 0
        assert srv.running()
    finally:
        sock.close()


def h2_client(srv, identity):
    """A raw HTTP/2 client connection: (TLS socket, h2 connection)."""
    import h2.config
    import h2.connection

    context = ssl.create_default_context(cafile=str(identity.ca))
    context.set_alpn_protocols(["h2"])
    sock = context.wrap_socket(socket.create_connection(("127.0.0.1", srv.port)), server_hostname="localhost")
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def open_stream(srv, sock, conn, path: str = "/sources/app?tail=0") -> int:
    stream_id = conn.get_next_available_stream_id()
    conn.send_headers(stream_id, [(":method", "GET"), (":scheme", "https"), (":authority", f"127.0.0.1:{srv.port}"),
                                  (":path", path), ("accept", "text/event-stream")], end_stream=True)
    sock.sendall(conn.data_to_send())
    return stream_id


def test_a_stream_the_client_resets_ends_and_its_neighbours_go_on(https, identity):
    srv, log = https
    sock, conn = h2_client(srv, identity)
    try:
        kept, dropped = open_stream(srv, sock, conn), open_stream(srv, sock, conn)
        wait_until(lambda: metric(srv, identity.ca, "tailsse_streams") == 2, what="two open streams")
        conn.reset_stream(dropped)
        sock.sendall(conn.data_to_send())
        wait_until(lambda: metric(srv, identity.ca, "tailsse_streams") == 1, what="the reset stream to end")
        append(log, "to the kept stream\n")
        data = bytearray()
        import h2.events
        deadline = time.monotonic() + 10
        while b'"text":"to the kept stream"' not in data:
            assert time.monotonic() < deadline, bytes(data)
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            for event in conn.receive_data(sock.recv(65536)):
                if isinstance(event, h2.events.DataReceived):
                    assert event.stream_id == kept
                    data += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            sock.sendall(conn.data_to_send())
    finally:
        sock.close()
    # The whole connection gone: its last stream ends too.
    wait_until(lambda: metric(srv, identity.ca, "tailsse_streams") == 0, what="the stream of the closed connection to end")


def test_sigterm_ends_http2_streams_cleanly(https, identity):
    srv, log = https
    streams = CurlStream("--cacert", str(identity.ca), "--http2", "-Z", url(srv, "/sources/app?tail=0"),
                         url(srv, "/sources/app?tail=0&again"))
    try:
        streams.wait_for(b"HTTP/2 200", count=2)
        wait_until(lambda: metric(srv, identity.ca, "tailsse_streams") == 2, what="two open streams")
        started = time.monotonic()
        assert srv.stop(signal.SIGTERM, timeout=15) == 0
        assert time.monotonic() - started < 5
        assert streams.proc.wait(timeout=10) == 0, streams.proc.stderr.read()  # both ended as HTTP/2 says
    finally:
        streams.close()


def test_access_control_over_https_and_http2(tailsse, logdir, identity, tmp_path):
    """Under TLS the login cookie is `__Host-` and `Secure`, the HTTP/2 `:authority` is checked
    like `Host`, same-origin means https, and a token is needed over h2 as over HTTP/1.1."""
    token = "https-token-0123456789abcdefXYZ"
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{token}\n")
    tokens.chmod(0o600)
    log = logdir / "app.log"
    log.write_bytes(b"secret\n")
    srv = tailsse({"app": log}, extra=[*tls_args(identity), "--token-file", str(tokens)])
    ca = ["--cacert", str(identity.ca)]
    answer = curl(*ca, "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", url(srv, "/sources"))
    assert answer.stdout == b"2 401", answer
    answer = curl(*ca, "--http2", "-H", f"Authorization: Bearer {token}", "-w", " %{http_version} %{http_code}", url(srv, "/sources/app?tail=1"),
                  "--max-time", "2")
    assert b"secret" in answer.stdout and answer.stdout.endswith(b" 2 200"), answer
    login = curl(*ca, "--http2", "-D", "-", "-o", "/dev/null", "--data", f"token={token}", url(srv, "/login"))
    head = login.stdout.decode()
    cookie = next(line for line in head.splitlines() if line.lower().startswith("set-cookie:"))
    assert "__Host-tailsse_session=" in cookie and "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie, cookie
    assert token not in cookie
    value = cookie.split(":", 1)[1].strip().split(";")[0]
    assert curl(*ca, "--http2", "-o", "/dev/null", "-w", "%{http_code}", "-H", f"Cookie: {value}", url(srv, "/sources")).stdout == b"200"
    rebound = curl(*ca, "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", "--connect-to", f"attacker.example:{srv.port}:127.0.0.1:{srv.port}",
                   "-k", f"https://attacker.example:{srv.port}/healthz")
    assert rebound.stdout == b"2 421", rebound
    cross = curl(*ca, "--http2", "-o", "/dev/null", "-w", "%{http_code}", "-H", f"Authorization: Bearer {token}",
                 "-H", f"Origin: http://127.0.0.1:{srv.port}", url(srv, "/sources"))
    assert cross.stdout == b"403", "http:// is another origin than the https page"
    same = curl(*ca, "--http2", "-o", "/dev/null", "-w", "%{http_code}", "-H", f"Authorization: Bearer {token}",
                "-H", f"Origin: https://127.0.0.1:{srv.port}", url(srv, "/sources"))
    assert same.stdout == b"200"
    assert token not in srv.log_text()


def test_connections_that_never_finish_the_tls_handshake_are_closed(tailsse, logdir, identity):
    """A TLS slowloris: sockets that send nothing, or half a ClientHello, are closed after
    --request-timeout, while a real client streams over HTTP/2 the whole time."""
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log}, extra=[*tls_args(identity), "--request-timeout", "2"])
    live = CurlStream("--cacert", str(identity.ca), "--http2", url(srv, "/sources/app?tail=0"))
    live.wait_for(b"retry:")
    half_hello = bytes.fromhex("16030100c8010000c40303") + b"\x00" * 20
    silent = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(50)]
    halves = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(50)]
    for sock in halves:
        sock.sendall(half_hello)
    try:
        pending, elapsed = wait_closed_by_server(silent + halves)
        assert not pending, f"{len(pending)} of 100 unfinished handshakes still open after 30 s"
        assert elapsed >= 1.5, f"closed after {elapsed:.1f} s, sooner than --request-timeout 2"
        append(log, "after the storm\n")
        live.wait_for(b"after the storm")
    finally:
        for sock in silent + halves:
            sock.close()
        live.close()
