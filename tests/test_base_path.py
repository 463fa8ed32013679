"""`--base-path`: the page, its assets, the API and the login cookie under a sub-path (as behind a
reverse proxy that forwards `/logs/`), nothing outside it, and bad base paths refused at start."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from http_client import SSEStream, Stream, build_request, request
from server import append, binary

STATIC = str(Path(__file__).resolve().parent.parent / "static")
TOKEN = "base-path-token-0123456789abcdef"


@pytest.fixture
def app_log(logdir):
    log = logdir / "app.log"
    log.write_text("one\ntwo\n")
    return log


def test_everything_is_served_under_the_base_path(tailsse, app_log):
    srv = tailsse({"app": app_log}, extra=["--base-path", "/logs", "--static-dir", STATIC])
    assert f"listening on http://127.0.0.1:{srv.port}/logs/" in srv.ready_line

    page = request(srv.port, "/logs/")
    assert page.status == 200 and b"<html" in page.body.lower()
    assert request(srv.port, "/logs/app.js").status == 200
    assert request(srv.port, "/logs/style.css").status == 200
    moved = request(srv.port, "/logs")
    assert moved.status == 301 and moved.header("location") == "/logs/", "the page without its / would resolve its links wrongly"
    assert request(srv.port, "/logs/healthz").body == b"ok\n"
    listing = request(srv.port, "/logs/sources", {"Accept": "application/json"})
    assert listing.status == 200 and listing.json()[0]["name"] == "app"
    assert "tailsse_" in request(srv.port, "/logs/metrics").body.decode()

    stream = SSEStream(srv.port, "/logs/sources/app?tail=2")
    assert [m.json["text"] for m in stream.wait_messages(2)] == ["one", "two"]
    append(app_log, "three\n")
    assert stream.wait_messages(3)[2].json["text"] == "three"
    last = stream.messages()[-1].id
    stream.close()
    append(app_log, "four\n")
    resumed = SSEStream(srv.port, "/logs/sources/app", last_event_id=last)
    assert resumed.wait_messages(1)[0].json["text"] == "four"
    resumed.close()
    # Opened once "four" was sent, so its tail starts after it.
    multiplexed = SSEStream(srv.port, "/logs/events?source=app&app.tail=0")
    multiplexed.wait_ready()
    append(app_log, "five\n")
    assert multiplexed.wait_messages(1)[0].json["text"] == "five"
    multiplexed.close()


@pytest.mark.parametrize("path", ["/", "/sources", "/sources/app", "/events?source=app", "/healthz", "/metrics",
                                  "/app.js", "/logsx/", "/logs/../sources", "/logs/..%2fsources", "/logs/%2e%2e/sources",
                                  "/other/logs/sources"])
def test_nothing_is_served_outside_the_base_path(tailsse, app_log, path):
    srv = tailsse({"app": app_log}, extra=["--base-path", "/logs/", "--static-dir", STATIC])
    answer = request(srv.port, path, {"Accept": "text/event-stream"})
    assert answer.status == 404, f"{path} answered {answer.status}: {answer.body[:200]!r}"
    assert b"one" not in answer.body


def test_the_login_cookie_lives_under_the_base_path(tailsse, app_log, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    tokens.chmod(0o600)
    srv = tailsse({"app": app_log}, extra=["--base-path", "/team/logs/", "--token-file", str(tokens)])
    assert request(srv.port, "/team/logs/sources").status == 401
    body = f"token={TOKEN}".encode()
    raw = build_request("/team/logs/login", [("Content-Type", "application/x-www-form-urlencoded"),
                                              ("Content-Length", str(len(body))), ("Connection", "close")], method="POST") + body
    with Stream(srv.port, "/team/logs/login", raw_request=raw) as answer:
        answer.read_all()
        cookie = answer.header("set-cookie")
    assert answer.status == 204, cookie
    assert "; Path=/team/logs/;" in cookie and cookie.startswith("tailsse_session=")
    session = cookie.split(";", 1)[0]
    assert request(srv.port, "/team/logs/sources", {"Cookie": session}).status == 200
    assert request(srv.port, "/login", method="POST").status == 404


@pytest.mark.parametrize("value", ["logs", "/logs//x/", "/a/../b/", "/./", "/logs/%2e/", "/lo gs/", "/a/b/c/d/e/f/g/h/i/",
                                   "/" + "x" * 300 + "/"])
def test_a_bad_base_path_stops_the_start_with_the_reason(app_log, value):
    done = subprocess.run([binary(), "--listen", "127.0.0.1:0", "--file", f"app={app_log}", "--base-path", value],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "--base-path" in done.stderr and "must be a path like /logs/" in done.stderr, done.stderr


def test_the_base_path_from_the_configuration_file(tailsse, app_log, tmp_path):
    config = tmp_path / "tailsse.conf"
    config.write_text("base-path = /from-config/\n")
    srv = tailsse({"app": app_log}, extra=["--config", str(config)])
    assert request(srv.port, "/from-config/healthz").status == 200
    assert request(srv.port, "/healthz").status == 404


@pytest.mark.parametrize("route", ["/sources", "/sources/app", "/events?source=app", "/metrics", "/login", "/logout"])
def test_cross_origin_requests_are_refused_under_the_base_path(tailsse, app_log, route):
    """The Origin check guards the API below the base path as it does at the root."""
    srv = tailsse({"app": app_log}, extra=["--base-path", "/logs/"])
    method = "POST" if route in ("/login", "/logout") else "GET"
    path = "/logs" + route
    assert request(srv.port, path, {"Origin": "http://evil.example"}, method=method).status == 403
    assert request(srv.port, path, {"Sec-Fetch-Site": "cross-site"}, method=method).status == 403
    if route in ("/sources", "/metrics"):
        assert request(srv.port, path, {"Origin": "http://127.0.0.1"}).status == 200  # the Host the client sends
