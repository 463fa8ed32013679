"""Over HTTPS with HTTP/2, Chromium holds a dozen EventSources to one tailsse on one connection
(over HTTP/1.1 it would stop at six per origin) and every one of them receives live lines."""

from __future__ import annotations

import contextlib
import json
import subprocess

from conftest import CHROMIUM, CHROMIUM_ARGS
from server import append, wait_until
from tls_support import make_identity

STREAMS = 12


def established(port: int) -> int:
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return len(out.splitlines())


def chromium_connections(port: int) -> set[str]:
    """Chromium's established connections to `port`, by local address."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", f"( dport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return {line.split()[2] for line in out.splitlines() if '"chromium"' in line}


def streams_open(port: int, ca) -> int:
    body = subprocess.run(["curl", "-sS", "--cacert", str(ca), f"https://127.0.0.1:{port}/metrics"],
                          capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in body.splitlines() if line.startswith("tailsse_streams ")))


def test_twelve_event_sources_share_one_http2_connection(tailsse, logdir, tmp_path, browser):
    identity = make_identity(tmp_path / "tls", "server")
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log}, extra=["--tls-cert", str(identity.cert), "--tls-key", str(identity.key)])
    # The session's Playwright (one sync Playwright per process) launches a chromium of its own.
    with contextlib.nullcontext(browser.browser_type) as chromium:
        # Trust exactly this server's key (the flag needs a profile directory of its own).
        context = chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS + [f"--ignore-certificate-errors-spki-list={identity.spki_sha256()}"])
        try:
            page = context.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            cdp = context.new_cdp_session(page)
            responses: list[dict] = []
            cdp.on("Network.responseReceived", lambda event: responses.append(
                {"url": event["response"]["url"], "connectionId": event["response"].get("connectionId"),
                 "protocol": event["response"].get("protocol")}))
            cdp.send("Network.enable")
            response = page.goto(f"https://127.0.0.1:{srv.port}/healthz")
            assert response.ok
            wait_until(lambda: len(chromium_connections(srv.port)) > 0, what="chromium's connection")
            before = chromium_connections(srv.port)
            assert page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol") == "h2"
            page.evaluate("""(count) => {
                window.received = [];
                window.opened = 0;
                for (let i = 0; i < count; i++) {
                    window.received.push([]);
                    const source = new EventSource(`/sources/app?tail=0&stream=${i}`);
                    source.onopen = () => { window.opened += 1; };
                    source.onmessage = (event) => { window.received[i].push(JSON.parse(event.data).text); };
                }
            }""", STREAMS)
            wait_until(lambda: page.evaluate("window.opened") == STREAMS, what="12 open EventSources")
            wait_until(lambda: streams_open(srv.port, identity.ca) == STREAMS, what="12 streams on the server")
            # (Playwright hands over devtools events while it waits on the page.)
            streams = lambda: [r for r in responses if "/sources/app" in r["url"]]  # noqa: E731
            wait_until(lambda: page.wait_for_timeout(10) or len(streams()) == STREAMS, what="12 stream responses in devtools")
            assert {r["protocol"] for r in responses} == {"h2"}, responses
            for n in range(3):
                append(log, f"live line {n}\n")
                wait_until(lambda: all(f"live line {n}" in texts for texts in page.evaluate("window.received")),
                           what=f"live line {n} on all {STREAMS} EventSources")
            assert page.evaluate("window.received") == [[f"live line {n}" for n in range(3)]] * STREAMS
            # The page and its 12 streams came over one connection (Chromium's connection ids), and
            # the 12 streams added no connection on the server: Chromium's sockets are those it had
            # after loading the page — one, at times a second it opened speculatively and left unused.
            assert len({r["connectionId"] for r in responses}) == 1, responses
            assert chromium_connections(srv.port) == before, (before, chromium_connections(srv.port))
            assert len(before) <= 2
            print(f"connections from chromium: {len(before)}; responses on one connection: {len(responses)}")
            protocols = page.evaluate("performance.getEntriesByType('resource').map(e => e.nextHopProtocol)")
            assert set(protocols) <= {"h2"}, json.dumps(protocols)
            assert problems == []
        finally:
            context.close()
