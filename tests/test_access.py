"""Access control against the real binary: tokens, limited tokens, the login cookie, failed-attempt
limits, revocation on SIGHUP, the refusal to open a non-loopback port without tokens, the `Host`
check against DNS rebinding, the `Origin` check, and the access log that never holds a token."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from http_client import LineStream, SSEStream, Stream, build_request, request
from journal_support import JournalFiles, have_journal_remote
from server import append, binary, wait_until

ALL = "all-sources-token-0123456789abcdef"
APP = "app-only-token-FEDCBA9876543210"
NEW = "newly-admitted-token-42424242ab"
WRONG = "wrong-token-0000000000000000000"
STATIC = str(Path(__file__).resolve().parent.parent / "static")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def write_tokens(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.fixture
def logs(logdir):
    app, nginx = logdir / "app.log", logdir / "nginx.log"
    app.write_text("app one\napp two\n")
    nginx.write_text("nginx one\n")
    return {"app": app, "nginx": nginx}


@pytest.fixture
def journal(tmp_path):
    if not have_journal_remote():
        pytest.skip("systemd-journal-remote is not installed (apt install systemd-journal-remote)")
    files = JournalFiles(tmp_path / "journal")
    files.messages(["journal one"])
    yield files
    files.close()


@pytest.fixture
def guarded(tailsse, logs, journal, tmp_path):
    tokens = write_tokens(tmp_path / "tokens", f"# who may read what\n{ALL}\n\n{APP} app\n")
    srv = tailsse(logs, extra=["--journal-directory", str(journal.directory), "--token-file", str(tokens), "--static-dir", STATIC])
    srv.tokens = tokens
    return srv


# Every route that holds log data, with the Accept header its clients use.
DATA_ROUTES = [
    ("/sources", None),
    ("/sources/app", None),
    ("/sources/app", "application/x-ndjson"),
    ("/sources/app", "text/event-stream"),
    ("/journal", "text/event-stream"),
    ("/events?source=app&source=journal", "text/event-stream"),
    ("/metrics", None),
]
# The history routes (in a test of their own: every wrong attempt counts against the client).
HISTORY_ROUTES = [
    ("/sources/app/lines?before=end", None),
    ("/sources/app/lines?after=start&before=end", None),
    ("/journal/lines?before=end", "application/x-ndjson"),
    ("/events/lines?source=app&source=journal&before=end", "application/x-ndjson"),
]


def status_of(port: int, path: str, headers: dict | None = None, accept: str | None = None, method: str = "GET") -> tuple[int, Stream]:
    hdrs = dict(headers or {})
    if accept:
        hdrs["Accept"] = accept
    stream = Stream(port, path, hdrs if method == "GET" else None,
                    raw_request=None if method == "GET" else build_request(path, hdrs, method=method))
    return stream.status, stream


@pytest.mark.parametrize("routes", [DATA_ROUTES, HISTORY_ROUTES], ids=["streams", "history"])
def test_every_data_route_needs_the_right_token(guarded, routes):
    for path, accept in routes:
        for headers, expected in ((None, 401), (bearer(WRONG), 401), ({"Authorization": f"Basic {ALL}"}, 401), (bearer(ALL), 200)):
            status, stream = status_of(guarded.port, path, headers, accept)
            with stream:
                assert status == expected, f"{path} ({accept}) with {headers}: {status}"
                if expected == 401:
                    body = json.loads(stream.read_all())
                    assert "token" in body["error"]
                    assert stream.header("WWW-Authenticate") == 'Bearer realm="tailsse"'
    with SSEStream(guarded.port, "/sources/app?tail=all", headers=bearer(ALL)) as s:
        assert s.wait_messages(2)
        assert s.texts() == ["app one", "app two"]
    # The page and the health check hold no log data: no token needed.
    for path in ("/", "/app.js", "/style.css", "/healthz"):
        assert request(guarded.port, path).status == 200, path


def test_a_limited_token_sees_only_its_sources_and_404_for_the_others(guarded):
    port = guarded.port
    listing = request(port, "/sources", headers=bearer(APP)).json()
    assert [s["name"] for s in listing] == ["app"]
    assert sorted(s["name"] for s in request(port, "/sources", headers=bearer(ALL)).json()) == ["app", "journal", "nginx"]
    nonexistent = request(port, "/sources/nosuch", headers=bearer(APP))
    for path in ("/sources/nginx", "/journal", "/sources/journal", "/events?source=app&source=nginx",
                 "/events?source=nginx", "/events?source=journal&source=app",
                 "/sources/nginx/lines?before=end", "/journal/lines?before=end", "/sources/nginx/lines?after=start&before=end",
                 "/events/lines?source=app&source=nginx&before=end", "/events/lines?source=nginx&after=start"):
        answer = request(port, path, headers=bearer(APP))
        assert answer.status == 404, path
        name = "journal" if "journal" in path.split("?source=")[0].split("?before")[0] or path.endswith("source=journal&source=app") else "nginx"
        assert answer.json() == {"error": f"unknown source '{name}'"}, path
    assert nonexistent.json() == {"error": "unknown source 'nosuch'"}, "a forbidden source looks exactly like a missing one"
    with SSEStream(port, "/events?source=app&tail=all", headers=bearer(APP)) as s:
        s.wait_messages(2)
        assert s.texts() == ["app one", "app two"]
    metrics = request(port, "/metrics", headers=bearer(APP)).body.decode()
    assert 'source="app"' in metrics and "nginx" not in metrics and "journal" not in metrics


def login(port: int, token: str, client: str | None = None) -> Stream:
    body = f"token={token}".encode()
    raw = build_request("/login", [("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", str(len(body))),
                                   ("Connection", "close")], method="POST") + body
    return Stream(port, "/login", raw_request=raw)


def test_login_sets_a_strict_http_only_cookie_that_is_not_the_token(guarded):
    with login(guarded.port, ALL) as answer:
        assert answer.status == 204
        cookie = answer.header("Set-Cookie")
    name_value, *attributes = [part.strip() for part in cookie.split(";")]
    name, value = name_value.split("=", 1)
    assert name == "tailsse_session"
    assert len(value) >= 40 and ALL not in cookie
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(attributes)
    assert "Secure" not in attributes, "plain HTTP: a Secure cookie would never be sent back"
    assert request(guarded.port, "/sources", headers={"Cookie": f"{name}={value}"}).status == 200
    with SSEStream(guarded.port, "/sources/app?tail=1", headers={"Cookie": f"{name}={value}"}) as s:
        s.wait_messages(1)
        assert s.texts() == ["app two"]
    assert request(guarded.port, "/sources", headers={"Cookie": f"{name}={value[:-2]}xx"}).status == 401
    with login(guarded.port, WRONG) as wrong:
        assert wrong.status == 401 and wrong.header("Set-Cookie") is None
    with login(guarded.port, APP) as limited:
        app_cookie = limited.header("Set-Cookie").split(";")[0]
    assert [s["name"] for s in request(guarded.port, "/sources", headers={"Cookie": app_cookie}).json()] == ["app"]
    status, out = status_of(guarded.port, "/logout", method="POST")
    with out:
        assert status == 204 and "Max-Age=0" in out.header("Set-Cookie")


def connect_from(address: str, port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(address, 0)) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def test_failed_attempts_are_limited_per_client_address(guarded):
    port = guarded.port
    for attempt in range(10):
        assert request(port, "/sources", headers=bearer(f"{WRONG[:-2]}{attempt:02d}")).status == 401
    limited = request(port, "/sources", headers=bearer(WRONG))
    assert limited.status == 429
    assert 1 <= int(limited.header("Retry-After")) <= 60
    assert "too many failed attempts" in limited.json()["error"]
    assert request(port, "/sources", headers=bearer(ALL)).status == 429, "the right token waits too: no guessing during the pause"
    with login(port, ALL) as answer:
        assert answer.status == 429
    other = connect_from("127.0.0.2", port, build_request("/sources", [("Authorization", f"Bearer {ALL}"), ("Connection", "close")]))
    assert other.startswith(b"HTTP/1.1 200"), other[:100]


def test_the_token_appears_nowhere_in_what_tailsse_writes_and_streams_are_logged(guarded):
    with SSEStream(guarded.port, "/sources/app?tail=all", headers=bearer(ALL)) as s:
        s.wait_messages(2)
    with SSEStream(guarded.port, "/events?source=app&source=nginx&tail=0", last_event_id="m1,app=f1.0.0.0.0",
                   headers=bearer(ALL)) as s:
        s.wait_ready()
    with LineStream(guarded.port, "/sources/nginx?tail=all", headers=bearer(ALL)) as s:
        s.wait_lines(1)
    with login(guarded.port, APP):
        pass
    request(guarded.port, "/sources", headers=bearer(WRONG))
    wait_until(lambda: guarded.log_text().count("stream ended") >= 3, 10, "three access log lines")
    guarded.stop()
    log = guarded.log_text()
    for token in (ALL, APP, WRONG):
        assert token not in log
    ended = [line for line in log.splitlines() if "stream ended" in line]
    assert len(ended) == 3, ended
    by_sources = {re.search(r"sources=(\S+)", line).group(1): line for line in ended}
    first = by_sources["app"]
    assert "client=127.0.0.1" in first and "format=sse" in first and "resumed=no" in first
    assert re.search(r"bytes=[1-9]\d*", first) and re.search(r"duration=\d+(\.\d+)?s", first)
    assert all("end=client went away" in line for line in ended), ended
    assert "resumed=yes" in by_sources["app,nginx"]
    assert "format=plain" in by_sources["nginx"]
    for line in ended:
        assert "app one" not in line and "f1." not in line and "app.log" not in line


def test_sighup_with_a_changed_token_file_revokes_and_admits(tailsse, logs, tmp_path):
    tokens = write_tokens(tmp_path / "tokens", f"{ALL}\n{APP} app nginx\n")
    srv = tailsse(logs, extra=["--token-file", str(tokens)])
    revoked = SSEStream(srv.port, "/sources/app?tail=0", headers=bearer(ALL))
    revoked_multi = SSEStream(srv.port, "/events?source=app&source=nginx&tail=0", headers=bearer(ALL))
    narrowed = SSEStream(srv.port, "/sources/nginx?tail=0", headers=bearer(APP))
    kept = SSEStream(srv.port, "/sources/app?tail=0", headers=bearer(APP))
    for s in (revoked, revoked_multi, narrowed, kept):
        s.wait_ready()
    wait_until(lambda: request(srv.port, "/metrics", headers=bearer(ALL)).body.count(b"tailsse_streams 4") == 1, 10, "4 streams")
    write_tokens(tokens, f"{APP} app\n{NEW}\n")
    os.kill(srv.pid, signal.SIGHUP)
    for s in (revoked, revoked_multi, narrowed):
        s.wait_for(lambda st: st.eof, 10, "the revoked stream ends")
        ends = [e for e in s.events if e.type == "end"]
        assert ends and all(e.json["reason"] == "access revoked" for e in ends), s.events
        assert s.clean_end, "the response ends cleanly after the end event"
    assert sorted(e.json["source"] for e in revoked_multi.events if e.type == "end") == ["app", "nginx"]
    append(logs["app"], "after the reload\n")
    kept.wait_messages(1)
    assert kept.texts() == ["after the reload"] and not kept.eof
    kept.close()
    assert request(srv.port, "/sources", headers=bearer(ALL)).status == 401
    assert request(srv.port, "/sources", headers=bearer(NEW)).status == 200
    assert request(srv.port, "/sources/nginx", headers=bearer(APP)).status == 404
    assert "end=access revoked" in srv.log_text()


def test_a_bad_token_file_is_refused_with_its_line_and_without_the_token(tmp_path, logs):
    cases = {
        "short\n": "line 1: a token must be 16-512 characters long",
        f"# c\n{ALL}\n{ALL} app\n": "line 3: repeats the token of line 2",
        f"{ALL} app ba/d\n": "line 1: word 3 is not a source name",
        "sixteen-chars-ok!!\n": "may hold only",
    }
    for text, message in cases.items():
        tokens = write_tokens(tmp_path / "tokens", text)
        run = subprocess.run([binary(), "--listen", "127.0.0.1:0", "--file", f"app={logs['app']}", "--token-file", str(tokens)],
                             capture_output=True, timeout=30)
        assert run.returncode != 0, text
        out = (run.stdout + run.stderr).decode()
        assert message in out and str(tokens) in out, out
        assert ALL not in out and "sixteen-chars" not in out, out
    run = subprocess.run([binary(), "--listen", "127.0.0.1:0", "--file", f"app={logs['app']}", "--token-file", str(tmp_path / "missing")],
                         capture_output=True, timeout=30)
    assert run.returncode != 0 and b"cannot read the token file" in run.stderr + run.stdout


def test_world_readable_token_file_is_warned_about(tailsse, logs, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{ALL}\n")
    tokens.chmod(0o644)
    srv = tailsse(logs, extra=["--token-file", str(tokens)])
    assert "readable by every user" in srv.log_text()


def start_plain(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([binary(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_non_loopback_listen_address_needs_a_token_file_or_an_explicit_open_door(tmp_path, logs):
    run = subprocess.run([binary(), "--listen", "0.0.0.0:0", "--file", f"app={logs['app']}"], capture_output=True, timeout=30)
    assert run.returncode != 0
    message = (run.stdout + run.stderr).decode()
    assert "refusing to serve 0.0.0.0:0 without a token file" in message and "--allow-unauthenticated" in message
    run = subprocess.run([binary(), "--listen", "[::]:0", "--file", f"app={logs['app']}"], capture_output=True, timeout=30)
    assert run.returncode != 0
    tokens = write_tokens(tmp_path / "tokens", f"{ALL}\n")
    for extra in (["--allow-unauthenticated"], ["--token-file", str(tokens)]):
        proc = start_plain(["--listen", "0.0.0.0:0", "--file", f"app={logs['app']}", *extra])
        try:
            line = proc.stdout.readline()
            assert b"listening on http://0.0.0.0:" in line, (extra, line, proc.stderr.read() if proc.poll() is not None else b"")
        finally:
            proc.kill()
            proc.wait()


# -- Host (DNS rebinding) and Origin ------------------------------------------------------------

ROUTES_FOR_HOST = ["/", "/app.js", "/healthz", "/sources", "/sources/app", "/journal", "/events?source=app", "/metrics", "/login", "/nosuch"]


def raw_status(port: int, raw: bytes) -> tuple[int, bytes]:
    with Stream(port, "/", raw_request=raw) as s:
        return s.status, s.read_all() if s.status != 200 else b""


def test_an_unknown_host_name_gets_421_on_every_route(tailsse, logs):
    srv = tailsse(logs, extra=["--allowed-host", "logs.example.org", "--static-dir", STATIC])
    for path in ROUTES_FOR_HOST:
        for host in ("attacker.example", f"attacker.example:{srv.port}", "127.0.0.1.attacker.example", "localhost.attacker.example",
                     "logs.example.org.evil", "evil/x", "[::1", ""):
            status, body = raw_status(srv.port, build_request(path, {"Host": host, "Connection": "close"}))
            assert status == 421, (path, host, status)
            assert "does not answer to the host name" in json.loads(body)["error"]
        for host in (f"127.0.0.1:{srv.port}", "127.0.0.9", f"localhost:{srv.port}", "LOCALHOST.", "app.localhost", "[::1]:8111",
                     "logs.example.org", f"LOGS.example.org.:{srv.port}"):
            status, _ = raw_status(srv.port, build_request(path, {"Host": host, "Connection": "close"}))
            assert status != 421, (path, host)
    status, _ = raw_status(srv.port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert status == 421, "no Host at all"


def test_the_address_the_connection_arrived_on_is_an_allowed_host(tailsse, logs, tmp_path):
    tokens = write_tokens(tmp_path / "tokens", f"{ALL}\n")
    srv = tailsse(logs, extra=["--listen", "0.0.0.0:0", "--token-file", str(tokens)])
    answer = connect_from("127.0.0.3", srv.port, build_request("/healthz", {"Host": f"127.0.0.1:{srv.port}", "Connection": "close"}))
    assert answer.startswith(b"HTTP/1.1 200")
    with socket.create_connection(("127.0.0.5", srv.port), timeout=10) as sock:
        sock.sendall(build_request("/healthz", {"Host": f"127.0.0.5:{srv.port}", "Connection": "close"}))
        assert sock.recv(100).startswith(b"HTTP/1.1 200")


def test_cross_origin_requests_are_refused_unless_the_origin_is_allowed(tailsse, logs, tmp_path):
    tokens = write_tokens(tmp_path / "tokens", f"{ALL}\n")
    srv = tailsse(logs, extra=["--token-file", str(tokens), "--allowed-origin", "https://dash.example.com:8443", "--static-dir", STATIC])
    port = srv.port
    own = f"http://127.0.0.1:{port}"
    for path, accept in DATA_ROUTES[:-1]:
        if "journal" in path:
            continue
        status, s = status_of(port, path, {**bearer(ALL), "Origin": "http://evil.example"}, accept)
        with s:
            assert status == 403, path
            assert "origin" in json.loads(s.read_all())["error"]
        status, s = status_of(port, path, {**bearer(ALL), "Origin": own, "Host": f"127.0.0.1:{port}"}, accept)
        s.close()
        assert status == 200, path
    assert request(port, "/sources", headers={**bearer(ALL), "Origin": "null"}).status == 403
    assert request(port, "/sources", headers={**bearer(ALL), "Sec-Fetch-Site": "cross-site"}).status == 403
    assert request(port, "/sources", headers={**bearer(ALL), "Sec-Fetch-Site": "same-origin"}).status == 200
    body = b"token=" + ALL.encode()
    raw = build_request("/login", [("Host", f"127.0.0.1:{port}"), ("Origin", own), ("Content-Type", "application/x-www-form-urlencoded"),
                                   ("Content-Length", str(len(body))), ("Connection", "close")], method="POST") + body
    assert raw_status(port, raw)[0] == 204, "a login from the page's own origin"
    raw = build_request("/login", [("Origin", "http://evil.example"), ("Content-Type", "application/x-www-form-urlencoded"),
                                   ("Content-Length", str(len(body))), ("Connection", "close")], method="POST") + body
    status, _ = raw_status(port, raw)
    assert status == 403, "no login from another site's form"
    allowed = request(port, "/sources", headers={**bearer(ALL), "Origin": "https://DASH.example.com:8443"})
    assert allowed.status == 200
    assert allowed.header("Access-Control-Allow-Origin") == "https://DASH.example.com:8443"
    assert allowed.header("Access-Control-Allow-Credentials") == "true"
    assert allowed.header("Vary") == "Origin"
    preflight_head = build_request("/events?source=app", [("Origin", "https://dash.example.com:8443"), ("Access-Control-Request-Method", "GET"),
                                                         ("Access-Control-Request-Headers", "authorization,last-event-id"), ("Connection", "close")],
                                   method="OPTIONS")
    preflight = request(port, "/events?source=app", raw_request=preflight_head)
    assert preflight.status == 204
    assert "Authorization" in preflight.header("Access-Control-Allow-Headers")
    assert preflight.header("Access-Control-Allow-Origin") == "https://dash.example.com:8443"
    assert request(port, "/sources", headers={**bearer(ALL), "Origin": "https://dash.example.com"}).status == 403, "the port is part of the origin"
    assert request(port, "/sources", headers=bearer(ALL)).header("Access-Control-Allow-Origin") is None
    assert request(port, "/", headers={"Origin": "http://evil.example"}).status == 200, "the page itself holds no data"


def test_bad_allowed_host_and_origin_values_are_refused(logs):
    for option, value, fragment in (("--allowed-origin", "https://x.example/path", "must be an origin"),
                                    ("--allowed-origin", "x.example", "must be an origin"),
                                    ("--allowed-host", "a b", "must be a host name"),
                                    ("--allowed-host", "x.example/p", "must be a host name")):
        run = subprocess.run([binary(), "--listen", "127.0.0.1:0", "--file", f"app={logs['app']}", option, value],
                             capture_output=True, timeout=30)
        assert run.returncode != 0 and fragment in (run.stdout + run.stderr).decode(), (option, value)


def _forwarded(address: str, token: str) -> dict:
    return {**bearer(token), "X-Forwarded-For": address}


def test_behind_a_trusted_proxy_failed_attempts_count_against_the_client_it_names(tailsse, logs, tmp_path):
    """With --trusted-proxy 127.0.0.1, a client guessing tokens through the proxy is limited by the
    address the proxy appends to X-Forwarded-For — not every client behind the proxy, and not
    whatever address the guesser writes into the header itself."""
    tokens = write_tokens(tmp_path / "tokens", f"{ALL}\n")
    srv = tailsse(logs, extra=["--token-file", str(tokens), "--trusted-proxy", "127.0.0.1", "--trusted-proxy", "10.0.0.0/8"])
    port = srv.port
    guesser = "203.0.113.7"
    for attempt in range(10):
        # The guesser claims other addresses; the proxy (10.1.1.1 here, behind 127.0.0.1) appends its own.
        claimed = f"198.51.100.{attempt}, {guesser}, 10.1.1.1"
        assert request(port, "/sources", headers=_forwarded(claimed, f"{WRONG[:-2]}{attempt:02d}")).status == 401
    assert request(port, "/sources", headers=_forwarded(f"198.51.100.77, {guesser}", ALL)).status == 429
    assert request(port, "/sources", headers=_forwarded("198.51.100.8", ALL)).status == 200, \
        "another client behind the same proxy is not locked out"
    assert request(port, "/sources", headers=bearer(ALL)).status == 200, "the proxy's own requests are not either"
    with SSEStream(port, "/sources/app?tail=1", headers=_forwarded("198.51.100.8, 10.1.1.1", ALL)) as s:
        s.wait_messages(1)
    wait_until(lambda: "client=198.51.100.8" in srv.log_path.read_text(), 20, "the access log naming the client")


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(tailsse, logs, tmp_path):
    tokens = write_tokens(tmp_path / "tokens", f"{ALL}\n")
    srv = tailsse(logs, extra=["--token-file", str(tokens)])
    for attempt in range(10):
        assert request(srv.port, "/sources", headers=_forwarded(f"203.0.113.{attempt}", f"{WRONG[:-2]}{attempt:02d}")).status == 401
    assert request(srv.port, "/sources", headers=_forwarded("198.51.100.8", ALL)).status == 429, \
        "a client cannot escape the limit by naming another address"


def test_bad_trusted_proxy_values_are_refused(logs):
    for value in ("localhost", "10.0.0.0/33", "1.2.3", "::1/129"):
        run = subprocess.run([binary(), "--listen", "127.0.0.1:0", "--file", f"app={logs['app']}", "--trusted-proxy", value],
                             capture_output=True, timeout=30)
        out = (run.stdout + run.stderr).decode()
        assert run.returncode != 0 and "trusted-proxy" in out and ("not an IP address" in out or "prefix length" in out), (value, out)
