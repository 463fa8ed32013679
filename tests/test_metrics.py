"""GET /metrics read by a real Prometheus text parser (prometheus_client's) before and after a known
workload: every counter moves by exactly what the workload did — lines read, events and bytes the
clients received, resumes, resets, refusals by each connection limit, closes by the request
timeout, failed and rate-limited authentications — and a token limited to some sources sees no
series of the others."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from http_client import LineStream, SSEStream, build_request
from journal_support import JournalFiles, have_journal_remote
from server import append, wait_closed_by_server, wait_until
from tls_support import make_identity

ALL = "all-sources-token-0123456789abcdef"
APP = "app-only-token-FEDCBA9876543210"
WRONG = "wrong-token-0000000000000000000"


def exchange(port: int, raw: bytes, source: str = "127.0.0.1", sock: socket.socket | None = None) -> tuple[int, dict, bytes]:
    """Sends one request (on `sock` if given, else on a new connection from `source`) and reads
    one response with a Content-Length body."""
    own = sock is None
    if own:
        sock = socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0))
    try:
        sock.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before the response head: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(headers["content-length"])
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk, "connection closed inside the response body"
            body += chunk
        return int(lines[0].split()[1]), headers, body[:length]
    finally:
        if own:
            sock.close()


class Scrape:
    """One parsed /metrics answer: samples by name and labels, and the families' HELP and TYPE."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[tuple[str, tuple], float] = {}
        self.families = {}
        for family in text_string_to_metric_families(text):
            self.families[family.name] = family
            for sample in family.samples:
                self.samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

    def __call__(self, name: str, **labels) -> float:
        key = (name, tuple(sorted(labels.items())))
        assert key in self.samples, f"no sample {key} in:\n{self.text}"
        return self.samples[key]

    def sources(self) -> set[str]:
        return {dict(labels)["source"] for (_, labels) in self.samples if "source" in dict(labels)}


def scrape(port: int, token: str | None = None, sock: socket.socket | None = None) -> Scrape:
    headers = [("Authorization", f"Bearer {token}")] if token else []
    if sock is None:
        headers.append(("Connection", "close"))
    status, head, body = exchange(port, build_request("/metrics", headers), sock=sock)
    assert status == 200, body
    assert head["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(body.decode())


def wait_for_metric(port: int, name: str, wanted: float, token: str | None = None, **labels) -> Scrape:
    """Waits until the sample reaches `wanted` (the server counts a write once it completes, which
    can be just after the client has read it) and checks it did not pass it."""
    found = wait_until(lambda: (s := scrape(port, token)) and s(name, **labels) >= wanted and s, 20, f"{name}{labels} to reach {wanted}")
    assert found(name, **labels) == wanted, f"{name}{labels}: {found(name, **labels)} != {wanted}"
    return found


def test_every_family_has_help_and_type_and_follows_the_naming_conventions(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log})
    metrics = scrape(srv.port)
    expected = {
        "tailsse_source_lines_read": "counter", "tailsse_source_events_sent": "counter", "tailsse_source_bytes_sent": "counter",
        "tailsse_source_resumes": "counter", "tailsse_source_resets": "counter", "tailsse_source_catch_up_reads": "counter", "tailsse_source_push_fallbacks": "counter",
        "tailsse_source_clients": "gauge", "tailsse_source_pushed_clients": "gauge", "tailsse_source_following": "gauge",
        "tailsse_connections": "gauge", "tailsse_streams": "gauge", "tailsse_connections_refused": "counter",
        "tailsse_connections_closed": "counter", "tailsse_auth_failures": "counter", "tailsse_auth_rate_limited": "counter",
        "process_open_fds": "gauge", "process_max_fds": "gauge", "process_resident_memory_bytes": "gauge",
    }
    for name, kind in expected.items():
        family = metrics.families.get(name)
        assert family is not None, f"no family {name} in:\n{metrics.text}"
        assert family.type == kind, (name, family.type)
        assert family.documentation, f"{name} has no HELP"
    for line in metrics.text.splitlines():
        if line.startswith("# TYPE ") and line.endswith(" counter"):
            assert line.split()[2].endswith("_total"), line
    for (name, _) in metrics.samples:
        assert name.startswith(("tailsse_", "process_")), name
    assert metrics("tailsse_source_following", source="app") == 1
    assert metrics("process_open_fds") > 3
    assert metrics("process_resident_memory_bytes") > 1 << 20
    assert metrics("process_max_fds") >= metrics("process_open_fds")


def test_lines_read_and_what_each_client_was_sent(tailsse, logdir):
    app, other = logdir / "app.log", logdir / "other.log"
    app.write_bytes(b"")
    other.write_bytes(b"")
    srv = tailsse({"app": app, "other": other}, heartbeat=60)
    before = scrape(srv.port)
    sse = SSEStream(srv.port, "/sources/app?tail=all", timeout=30)
    plain = LineStream(srv.port, "/sources/app?tail=all", timeout=30)
    ndjson = LineStream(srv.port, "/events?source=app&source=other&tail=all", accept="application/x-ndjson", timeout=30)
    wait_until(lambda: scrape(srv.port)("tailsse_source_clients", source="app") == 3, what="three clients of app")
    assert scrape(srv.port)("tailsse_source_clients", source="other") == 1
    append(app, "".join(f"app line {i}\n" for i in range(100)))
    append(other, "".join(f"other line {i}\n" for i in range(40)))
    sse.wait_messages(100)
    plain.wait_lines(100)
    ndjson.wait_lines(140)

    after = wait_for_metric(srv.port, "tailsse_source_events_sent_total", 300 + before("tailsse_source_events_sent_total", source="app"), source="app")
    assert after("tailsse_source_lines_read_total", source="app") - before("tailsse_source_lines_read_total", source="app") == 100
    assert after("tailsse_source_lines_read_total", source="other") - before("tailsse_source_lines_read_total", source="other") == 40
    after = wait_for_metric(srv.port, "tailsse_source_events_sent_total", 40 + before("tailsse_source_events_sent_total", source="other"), source="other")
    # Bytes: every byte of the events each client received. The SSE stream's `retry:` preamble is
    # no source's; NDJSON has none, and a heartbeat every 60 s never came.
    preamble = bytes(sse.body).index(b"\n\n") + 2
    assert bytes(sse.body)[:preamble].startswith(b"retry: ")
    app_lines = [line for line in ndjson.lines() if json.loads(line)["source"] == "app"]
    app_bytes = (len(sse.body) - preamble) + len(plain.body) + sum(len(line) + 1 for line in app_lines)
    other_bytes = len(ndjson.body) - sum(len(line) + 1 for line in app_lines)
    after = wait_for_metric(srv.port, "tailsse_source_bytes_sent_total", app_bytes + before("tailsse_source_bytes_sent_total", source="app"), source="app")
    assert after("tailsse_source_bytes_sent_total", source="other") - before("tailsse_source_bytes_sent_total", source="other") == other_bytes
    assert after("tailsse_streams") == 3
    assert after("tailsse_connections") >= 3
    for stream in (sse, plain, ndjson):
        stream.close()
    wait_until(lambda: scrape(srv.port)("tailsse_source_clients", source="app") == 0, what="the clients to leave")


def test_a_resume_and_a_reset_are_counted(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"".join(f"line {i}\n".encode() for i in range(10)))
    srv = tailsse({"app": log})
    with SSEStream(srv.port, "/sources/app?tail=all") as first:
        events = first.wait_messages(10)
    before = scrape(srv.port)
    assert before("tailsse_source_resumes_total", source="app") == 0
    # The lines were there before tailsse started: the follower read none of them, and the stream
    # read them from the file itself, in one read.
    assert before("tailsse_source_lines_read_total", source="app") == 0
    assert before("tailsse_source_catch_up_reads_total", source="app") == 1
    with SSEStream(srv.port, "/sources/app", last_event_id=events[4].id) as resumed:
        assert [e.json["text"] for e in resumed.wait_messages(5)] == [f"line {i}" for i in range(5, 10)]
    after = scrape(srv.port)
    assert after("tailsse_source_resumes_total", source="app") == 1
    assert after("tailsse_source_resets_total", source="app") == before("tailsse_source_resets_total", source="app")
    assert after("tailsse_source_catch_up_reads_total", source="app") == 2
    with SSEStream(srv.port, "/sources/app?tail=0", last_event_id="not-an-id") as reset:
        reset.wait_for(lambda s: any(e.type == "reset" for e in s.events), what="the reset event")
    after = scrape(srv.port)
    assert after("tailsse_source_resets_total", source="app") == before("tailsse_source_resets_total", source="app") + 1
    assert after("tailsse_source_resumes_total", source="app") == 1
    assert after("tailsse_source_catch_up_reads_total", source="app") == 2, "the live end is in the shared buffer"


def test_refusals_are_counted_by_limit(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log}, extra=["--max-connections-per-client", "2", "--max-connections", "4"])
    # The scrapes share one kept-alive connection, admitted before the limits fill up.
    scraper = socket.create_connection(("127.0.0.1", srv.port), timeout=15, source_address=("127.0.0.9", 0))
    held: list[socket.socket] = []
    try:
        before = scrape(srv.port, sock=scraper)
        def hold(address: str) -> None:
            # Answered, so admitted before the next connection is made; then kept alive.
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=15, source_address=(address, 0))
            held.append(sock)
            assert exchange(srv.port, build_request("/healthz"), sock=sock)[0] == 200

        hold("127.0.0.1")
        hold("127.0.0.1")
        status, headers, _ = exchange(srv.port, build_request("/healthz", [("Connection", "close")]), source="127.0.0.1")
        assert status == 503 and headers["retry-after"] == "5"
        hold("127.0.0.2")
        status, _, _ = exchange(srv.port, build_request("/healthz", [("Connection", "close")]), source="127.0.0.3")
        assert status == 503
        after = scrape(srv.port, sock=scraper)
        assert after("tailsse_connections_refused_total", limit="per_client") - before("tailsse_connections_refused_total", limit="per_client") == 1
        assert after("tailsse_connections_refused_total", limit="total") - before("tailsse_connections_refused_total", limit="total") == 1
        assert after("tailsse_connections") == 4
    finally:
        for sock in held + [scraper]:
            sock.close()


def test_a_half_sent_head_closed_by_the_request_timeout_is_counted(tailsse, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log}, extra=["--request-timeout", "1"])
    before = scrape(srv.port)
    attacker = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
    attacker.sendall(b"GET /sources/app HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    still_open, _ = wait_closed_by_server([attacker], timeout=15)
    attacker.close()
    assert not still_open
    after = scrape(srv.port)
    assert after("tailsse_connections_closed_total", timeout="request") - before("tailsse_connections_closed_total", timeout="request") == 1
    assert after("tailsse_connections_closed_total", timeout="write") == before("tailsse_connections_closed_total", timeout="write")


def test_auth_failures_and_a_limited_token_sees_only_its_sources(tailsse, logdir, tmp_path):
    app, nginx = logdir / "app.log", logdir / "nginx.log"
    app.write_text("app one\n")
    nginx.write_text("nginx one\n")
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{ALL}\n{APP} app\n")
    tokens.chmod(0o600)
    srv = tailsse({"app": app, "nginx": nginx}, extra=["--token-file", str(tokens)])
    before = scrape(srv.port, ALL)
    assert before.sources() == {"app", "nginx"}
    limited = scrape(srv.port, APP)
    assert limited.sources() == {"app"}
    assert "nginx" not in limited.text
    assert limited("tailsse_source_lines_read_total", source="app") == before("tailsse_source_lines_read_total", source="app")

    status, _, _ = exchange(srv.port, build_request("/sources", [("Authorization", f"Bearer {WRONG}"), ("Connection", "close")]))
    assert status == 401
    body = f"token={WRONG}".encode()
    login = build_request("/login", [("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", str(len(body))),
                                     ("Connection", "close")], method="POST") + body
    status, _, _ = exchange(srv.port, login)
    assert status == 401
    status, _, _ = exchange(srv.port, build_request("/sources", [("Connection", "close")]))
    assert status == 401, "no token at all is no failed attempt"
    after = scrape(srv.port, ALL)
    assert after("tailsse_auth_failures_total") - before("tailsse_auth_failures_total") == 2
    assert after("tailsse_auth_rate_limited_total") == before("tailsse_auth_rate_limited_total")

    # From another address: ten failures are allowed, the eleventh attempt is rate-limited.
    for _ in range(10):
        status, _, _ = exchange(srv.port, build_request("/sources", [("Authorization", f"Bearer {WRONG}"), ("Connection", "close")]), source="127.0.0.5")
        assert status == 401
    status, _, _ = exchange(srv.port, build_request("/sources", [("Authorization", f"Bearer {WRONG}"), ("Connection", "close")]), source="127.0.0.5")
    assert status == 429
    final = scrape(srv.port, ALL)
    assert final("tailsse_auth_failures_total") - after("tailsse_auth_failures_total") == 10
    assert final("tailsse_auth_rate_limited_total") - after("tailsse_auth_rate_limited_total") == 1


def test_tls_handshake_deadline_and_request_timeout_over_tls_are_counted(tailsse, logdir, tmp_path):
    identity = make_identity(tmp_path / "tls", "server")
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log}, extra=["--tls-cert", str(identity.cert), "--tls-key", str(identity.key), "--request-timeout", "1"])

    def scrape_tls() -> Scrape:
        body = subprocess.run(["curl", "-sS", "--cacert", str(identity.ca), f"https://127.0.0.1:{srv.port}/metrics"],
                              capture_output=True, timeout=20, check=True).stdout
        return Scrape(body.decode())

    before = scrape_tls()
    silent = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(3)]
    context = ssl.create_default_context(cafile=str(identity.ca))
    context.set_alpn_protocols(["http/1.1"])
    half = context.wrap_socket(socket.create_connection(("127.0.0.1", srv.port), timeout=10), server_hostname="localhost")
    half.sendall(b"GET /sources/app HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    try:
        still_open, _ = wait_closed_by_server(silent, timeout=15)
        assert not still_open
        try:
            answer = half.recv(4096)
        except (ssl.SSLError, ConnectionError):
            answer = b""
        assert answer == b"", "the half-sent head over TLS was not closed"
    finally:
        for sock in silent + [half]:
            sock.close()
    after = scrape_tls()
    assert after("tailsse_connections_closed_total", timeout="tls_handshake") - before("tailsse_connections_closed_total", timeout="tls_handshake") == 3
    assert after("tailsse_connections_closed_total", timeout="request") - before("tailsse_connections_closed_total", timeout="request") == 1


@pytest.mark.skipif(not have_journal_remote(), reason="systemd-journal-remote is not installed (apt install systemd-journal-remote)")
def test_the_journal_source_counts_entries_read_events_sent_resumes_and_resets(tailsse, tmp_path):
    journal = JournalFiles(tmp_path / "journal")
    try:
        journal.messages([f"old {i}" for i in range(20)])
        journal.close()
        srv = tailsse({}, extra=["--journal-directory", str(journal.directory)], heartbeat=60)
        before = scrape(srv.port)
        assert before("tailsse_source_lines_read_total", source="journal") == 0, "the follower starts at the end"
        with SSEStream(srv.port, "/journal?tail=5") as stream:
            stream.wait_messages(5)
            journal.messages([f"new {i}" for i in range(30)])
            events = stream.wait_messages(35)
            body = bytes(stream.body)
        after = wait_for_metric(srv.port, "tailsse_source_lines_read_total", 30, source="journal")
        after = wait_for_metric(srv.port, "tailsse_source_events_sent_total", 35, source="journal")
        assert after("tailsse_source_bytes_sent_total", source="journal") == len(body) - (body.index(b"\n\n") + 2)
        assert after("tailsse_source_catch_up_reads_total", source="journal") >= 1, "the 5 old entries were read from the journal"
        with SSEStream(srv.port, "/journal", last_event_id=events[30].id) as resumed:
            assert [e.json["text"] for e in resumed.wait_messages(4)] == [f"new {i}" for i in range(26, 30)]
        with SSEStream(srv.port, "/journal?tail=0", last_event_id="s=0;i=0;b=0") as reset:
            reset.wait_for(lambda s: any(e.type == "reset" for e in s.events), what="the reset event")
        final = scrape(srv.port)
        assert final("tailsse_source_resumes_total", source="journal") == 1
        assert final("tailsse_source_resets_total", source="journal") == 1
        assert final("tailsse_source_lines_read_total", source="journal") == 30
    finally:
        journal.close()
