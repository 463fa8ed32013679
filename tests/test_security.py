"""No part of a request ever becomes a filesystem path: traversal attempts get a JSON 404 and the
server opens no file outside its configuration (checked with strace)."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from http_client import LineStream, build_request, request
from server import wait_until

TRAVERSALS = [
    "/sources/..%2f..%2fetc%2fpasswd",
    "/sources/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/sources/%2e%2e/%2e%2e/etc/passwd",
    "/sources/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/sources/../../etc/passwd",
    "/sources/..",
    "/sources/%2e%2e",
    "/sources/%00",
    "/sources/app%00",
    "/sources/app%2f..%2f..%2f..%2fetc%2fpasswd",
    "/sources/app/../../../etc/passwd",
    "/sources//etc/passwd",
    "/sources/%2fetc%2fpasswd",
    "/sources/..%252f..%252fetc%252fpasswd",
    "/sources/..%5c..%5cetc%5cpasswd",
    "/static/../../etc/passwd",
    "/..%2fetc%2fpasswd",
    "/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/../../../../etc/passwd",
    "//etc/passwd",
    "/etc/passwd",
    "/passwd",
    "/index.html/../../../etc/passwd",
    "/%2fetc%2fpasswd",
    "/.%2e/.%2e/etc/passwd",
    "/sources/app?tail=all&file=/etc/passwd",
    "/sources/app?lastEventId=../../etc/passwd",
    "/%00",
    "/.env",
    "/.hidden",
    "/..",
]


@pytest.fixture
def static_dir(tmp_path):
    d = tmp_path / "static"
    d.mkdir()
    (d / "index.html").write_text("<!doctype html><title>tailsse test page</title>\n")
    (d / ".hidden").write_text("not served\n")
    return d


def check_traversals(srv):
    for path in TRAVERSALS:
        if path.startswith("/sources/app?"):
            # A configured source with odd extra parameters: the source itself, never a file.
            with LineStream(srv.port, path) as s:
                assert s.status == 200
                assert s.wait_lines(1) == [b"x"]
            continue
        r = request(srv.port, path, raw_request=build_request(path, {"Connection": "close"}))
        assert r.status == 404, f"{path}: {r}"
        assert r.header("content-type").startswith("application/json"), f"{path}: {r.headers}"
        assert isinstance(r.json().get("error"), str), f"{path}: {r.body!r}"
        assert b"root:" not in r.body


def test_path_traversal_is_404(tailsse, logdir, static_dir):
    log = logdir / "app.log"
    log.write_bytes(b"x\n")
    srv = tailsse({"app": log}, extra=["--static-dir", str(static_dir)])
    # The page is served from the static directory, so the asset route is live.
    r = request(srv.port, "/")
    assert r.status == 200 and b"tailsse test page" in r.body
    assert request(srv.port, "/index.html").status == 200
    check_traversals(srv)
    assert srv.running()


def test_no_file_outside_the_configuration_is_opened(tailsse, logdir, static_dir):
    strace = shutil.which("strace")
    if not strace:
        pytest.skip("strace is not installed (make deps-test installs it): cannot watch the server's open() calls")
    trace = logdir.parent / "strace.log"
    log = logdir / "app.log"
    log.write_bytes(b"x\n")
    srv = tailsse({"app": log}, extra=["--static-dir", str(static_dir)],
                  wrapper=[strace, "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", str(trace)])
    assert request(srv.port, "/healthz").status == 200
    wait_until(lambda: trace.exists() and trace.stat().st_size > 0, 20, "strace output")
    startup_lines = len(trace.read_text(errors="replace").splitlines())
    check_traversals(srv)
    # Also resume ids that look like paths, on a stream (they are parsed, never opened).
    for bad in ("../../etc/passwd", "/etc/passwd", "f1.0.0.0.0", "f1.0.1.2.3"):
        with LineStream(srv.port, "/sources/app?tail=1", accept="application/x-ndjson",
                        headers={"Last-Event-ID": bad}) as s:
            first, second = [json.loads(x) for x in s.wait_lines(2)]
            assert first["event"] == "reset" and second["text"] == "x"
    assert request(srv.port, "/healthz").status == 200
    assert srv.stop() == 0
    text = trace.read_text(errors="replace")
    assert f'"{log}"' in text, "strace did not see tailsse open its own log file: is it tracing the server?"
    assert "/etc/passwd" not in text, [line for line in text.splitlines() if "passwd" in line]
    # After startup, every path tailsse opened is inside its configured directories (or /proc, /sys;
    # /etc/localtime is the time zone the log's timestamps use, read when the first access log
    # line is written).
    allowed = (str(logdir), str(static_dir), "/proc/", "/sys/", "/etc/localtime")
    opened = []
    for line in text.splitlines()[startup_lines:]:
        m = re.search(r'open(?:at2?)?\((?:AT_FDCWD|\d+)?,? ?"([^"]*)"', line)
        if m:
            opened.append(m.group(1))
    outside = [p for p in opened if not p.startswith(allowed)]
    assert outside == [], f"files opened outside the configuration: {outside}"
    print(f"{len(opened)} opens after startup: {sorted(set(opened))}")
