"""The page behind a token file (login form, cookie, live lines, revocation) and a DNS-rebinding
attempt, in Debian's chromium."""

from __future__ import annotations

import os
import signal

import pytest

from conftest import CHROMIUM_ARGS, CHROMIUM
from server import append
from view import lines, wait_for_status, wait_for_text

TOKEN = "page-login-token-0123456789abcdef"
OTHER = "second-token-for-the-page-9876543210"


def token_file(tmp_path, text: str):
    path = tmp_path / "tokens"
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_login_on_the_page_then_live_lines_and_a_revoked_token_asks_again(web, page, logdir, tmp_path):
    log = logdir / "app.log"
    log.write_bytes(b"before login\n")
    tokens = token_file(tmp_path, f"{TOKEN} app\n")
    srv = web({"app": log}, extra=["--token-file", str(tokens)])
    page.goto(srv.url("/"))
    form = page.locator("#login")
    form.wait_for(state="visible")
    wait_for_status(page, "stopped")
    page.fill("#login-token", "not-the-token-at-all-000000")
    page.click("#login-button")
    page.locator("#login-error").filter(has_text="Wrong token.").wait_for()
    assert page.locator("#log .row").count() == 0
    page.fill("#login-token", TOKEN)
    page.click("#login-button")
    form.wait_for(state="hidden")
    wait_for_text(page, "before login")
    append(log, "live after login\n")
    wait_for_text(page, "live after login")
    wait_for_status(page, "live")
    cookies = page.context.cookies()
    assert len(cookies) == 1, cookies
    cookie = cookies[0]
    assert cookie["name"] == "tailsse_session" and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert not cookie["secure"], "plain HTTP"
    assert TOKEN not in cookie["value"]
    assert page.evaluate("document.cookie") == "", "HttpOnly: the page's scripts cannot read it"
    stored = page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage), location.href])")
    assert TOKEN not in stored

    # Revoke the token: the stream ends, the page asks again, and resumes exactly after a new login.
    token_file(tmp_path, f"{OTHER}\n")
    os.kill(srv.pid, signal.SIGHUP)
    form.wait_for(state="visible", timeout=20_000)
    append(log, "written while logged out\n")
    page.fill("#login-token", OTHER)
    page.click("#login-button")
    form.wait_for(state="hidden")
    wait_for_text(page, "written while logged out")
    assert lines(page) == ["before login", "live after login", "written while logged out"]
    assert TOKEN not in srv.log_text() and OTHER not in srv.log_text()
    assert page.problems == [] or all("401" in p for p in page.problems), page.problems


@pytest.fixture
def rebinding_browser(browser):
    """A second chromium whose resolver maps rebind.test (a name the attacker controls) to 127.0.0.1."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} not found")
    b = browser.browser_type.launch(executable_path=CHROMIUM, headless=True,
                                    args=CHROMIUM_ARGS + ["--host-resolver-rules=MAP rebind.test 127.0.0.1"])
    yield b
    b.close()


def test_a_page_loaded_through_a_rebound_name_gets_nothing(web, rebinding_browser, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"secret line\n")
    srv = web({"app": log})
    context = rebinding_browser.new_context()
    page = context.new_page()
    response = page.goto(f"http://rebind.test:{srv.port}/")
    assert response.status == 421
    assert "secret line" not in page.content()
    assert page.evaluate("fetch('/sources').then(r => r.status)") == 421
    assert page.evaluate("fetch('/sources/app?tail=all').then(r => r.text())").count("secret line") == 0
    context.close()
    # The same browser and resolver reach the page through a name the server allows (proving
    # the mapping leads to this server), and through localhost.
    allowed = web({"app": log}, extra=["--allowed-host", "rebind.test"])
    context = rebinding_browser.new_context()
    page = context.new_page()
    assert page.goto(f"http://rebind.test:{allowed.port}/").status == 200
    wait_for_text(page, "secret line")
    page.goto(f"http://localhost:{srv.port}/")
    wait_for_text(page, "secret line")
    context.close()
