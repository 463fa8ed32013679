"""Seeded fuzzing of the HTTP edge against the real binary: mutated query parameters, resume ids,
Accept, Host, Origin, Cookie and Authorization values and login bodies, from the corpus in
fuzz/corpus/. Every answer is 200 or a 4xx with a JSON error — never a 5xx, never a hang — and the
server ends the run alive, with its memory where it was. TAILSSE_HTTP_FUZZ_REQUESTS sets the count
(default 3,000; `make fuzz` runs 50,000)."""

from __future__ import annotations

import json
import os
import random
import socket
import time
from pathlib import Path
from urllib.parse import quote

from http_client import Stream, request
from server import append

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
TOKEN = "http-fuzz-token-0123456789abcdef"
ALLOWED = {200, 204, 400, 401, 403, 404, 405, 413, 414, 421, 429, 431}


def corpus(target: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((CORPUS / target).iterdir())]


def mutate(rng: random.Random, seed: bytes, others: list[bytes]) -> bytes:
    data = bytearray(seed)
    interesting = b"\x00\n\r %,.:=&[]\x7f\x80\xc3\xff/\\?#;\""
    for _ in range(rng.randint(0, 4)):
        at = rng.randint(0, len(data))
        choice = rng.randint(0, 6)
        if choice == 0 and data and at < len(data):
            data[at] ^= 1 << rng.randint(0, 7)
        elif choice == 1:
            data[at:at] = bytes([rng.choice(interesting)])
        elif choice == 2 and at < len(data):
            del data[at]
        elif choice == 3:
            other = rng.choice(others)
            data[at:at] = other[rng.randint(0, len(other)):]
        elif choice == 4 and data:
            start = min(at, len(data) - 1)
            data[start:start] = bytes(data[start:start + rng.randint(1, 16)]) * rng.randint(1, 60)
        elif choice == 5:
            del data[at:]
        else:
            data[at:at] = bytes([rng.randint(0, 255)])
    return bytes(data[:6000])


def header_value(raw: bytes) -> str:
    """A header value the wire can carry: no CR, LF or NUL (those end or break the head)."""
    return raw.replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b"").decode("latin-1")


def exchange(port: int, source: str, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as sock:
        sock.sendall(head + body)
        data = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in data:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        if not data:
            return 0, b""
        status = int(data.split(b" ", 2)[1])
        head_end = data.find(b"\r\n\r\n") + 4
        rest = data[head_end:]
        headers = data[:head_end].lower()
        if b"content-length:" in headers:
            length = int(headers.split(b"content-length:")[1].split(b"\r\n")[0])
            while len(rest) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
        return status, rest


def test_fuzzed_requests_get_200_or_a_json_4xx_and_the_server_survives(tailsse, logdir, tmp_path):
    log = logdir / "app.log"
    log.write_text("".join(f"line {i}\n" for i in range(50)))
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN}\nlimited-token-0123456789abcdef app\n")
    tokens.chmod(0o600)
    srv = tailsse({"app": log, "web": logdir / "web.log"}, extra=["--token-file", str(tokens), "--allowed-host", "logs.example.org"])
    seed = int(os.environ.get("TAILSSE_FUZZ_SEED", "20261202"))
    count = int(os.environ.get("TAILSSE_HTTP_FUZZ_REQUESTS", "3000"))
    rng = random.Random(seed)
    queries, ids, composite, accepts = corpus("query"), corpus("file-id"), corpus("composite-id"), corpus("accept")
    hosts, origins, forms = corpus("host"), corpus("origin"), corpus("form")
    paths = ["/sources", "/sources/app", "/sources/web", "/sources/nosuch", "/journal", "/events", "/metrics", "/", "/app.js",
             "/healthz", "/sources/../etc/passwd", "/%2e%2e/x", "/sources/app/extra"]
    baseline = srv.rss_bytes()
    statuses: dict[int, int] = {}
    for index in range(count):
        path = rng.choice(paths)
        query = mutate(rng, rng.choice(queries), queries).decode("latin-1")
        query = "&".join(quote(part, safe="=.,_-") for part in query.split("&"))
        if path == "/events" and rng.random() < 0.7:
            query = "source=app&source=web&" + query
        target = f"{path}?{query}" if rng.random() < 0.8 else path
        headers = [("Host", header_value(mutate(rng, rng.choice(hosts), hosts)) if rng.random() < 0.2 else f"127.0.0.1:{srv.port}")]
        kind = rng.random()
        if kind < 0.75:
            headers.append(("Authorization", f"Bearer {TOKEN}"))
        elif kind < 0.85:
            headers.append(("Authorization", header_value(mutate(rng, b"Bearer " + TOKEN.encode(), [b"Basic x"]))))
        elif kind < 0.92:
            headers.append(("Cookie", header_value(mutate(rng, b"tailsse_session=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", [b"; a=b"]))))
        if rng.random() < 0.5:
            headers.append(("Last-Event-ID", header_value(mutate(rng, rng.choice(ids + composite), ids + composite))))
        if rng.random() < 0.6:
            headers.append(("Accept", header_value(mutate(rng, rng.choice(accepts), accepts))))
        if rng.random() < 0.15:
            headers.append(("Origin", header_value(mutate(rng, rng.choice(origins), origins))))
        method, body = "GET", b""
        if rng.random() < 0.08:
            method, target = "POST", "/login"
            body = mutate(rng, rng.choice(forms), forms)
            headers += [("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", str(len(body)))]
        headers.append(("Connection", "close"))
        head = f"{method} {target} HTTP/1.1\r\n".encode("latin-1") + b"".join(
            f"{k}: {v}\r\n".encode("latin-1") for k, v in headers) + b"\r\n"
        source = f"127.0.0.{2 + index % 200}"
        status, rest = exchange(srv.port, source, head, body)
        statuses[status] = statuses.get(status, 0) + 1
        assert status in ALLOWED, f"request {index}: {status} for {head!r}\n{srv.log_tail()}"
        if status >= 400 and rest:
            assert "error" in json.loads(rest), (head, rest)
        if index % 200 == 0:
            append(log, f"live {index}\n")
    assert srv.running()
    assert request(srv.port, "/healthz").status == 200
    growth = srv.rss_bytes() - baseline
    print(f"{count} fuzzed requests: {dict(sorted(statuses.items()))}; RSS growth {growth / 1048576:.1f} MiB")
    assert growth < 64 << 20
    assert statuses.get(200, 0) > count // 10, "the fuzzer hardly reached the routes"


def test_oversized_targets_too_many_parameters_and_filter_terms_are_refused(tailsse, logdir, tmp_path):
    from journal_support import JournalFiles, have_journal_remote
    log = logdir / "app.log"
    log.write_text("x\n")
    journal = None
    extra: list[str] = []
    if have_journal_remote():
        journal = JournalFiles(tmp_path / "journal")
        journal.messages(["entry"])
        extra = ["--journal-directory", str(journal.directory)]
    try:
        srv = tailsse({"app": log}, extra=extra)
        long = request(srv.port, "/sources/app?tail=1&x=" + "a" * 9000)
        assert long.status == 414 and "longer than 8192 bytes" in long.json()["error"]
        many = request(srv.port, "/sources/app?" + "&".join(f"p{i}=1" for i in range(65)))
        assert many.status == 400 and "at most 64 query parameters" in many.json()["error"]
        with Stream(srv.port, "/sources/app?" + "&".join(f"p{i}=1" for i in range(64))) as within:
            assert within.status == 200, "64 parameters are within the limit"
        if journal is not None:
            terms = "&".join(f"MESSAGE_ID=m{i}" for i in range(33))
            complex_filter = request(srv.port, f"/journal?{terms}")
            assert complex_filter.status == 400 and "at most 32 filter terms" in complex_filter.json()["error"]
            with Stream(srv.port, "/journal?" + "&".join(f"MESSAGE_ID=m{i}" for i in range(32))) as within:
                assert within.status == 200, "32 terms are within the limit"
    finally:
        if journal is not None:
            journal.close()
