"""Over HTTPS with HTTP/2, Chromium holds a dozen EventSources to one tailsse on one connection
(over HTTP/1.1 it would stop at six per origin) and every one of them receives live lines."""

from __future__ import annotations

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


def streams_open(port: int, ca) -> int:
    body = subprocess.run(["curl", "-sS", "--cacert", str(ca), f"https://127.0.0.1:{port}/metrics"],
                          capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in body.splitlines() if line.startswith("tailsse_streams ")))


def test_twelve_event_sources_share_one_http2_connection(tailsse, logdir, tmp_path):
    identity = make_identity(tmp_path / "tls", "server")
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = tailsse({"app": log}, extra=["--tls-cert", str(identity.cert), "--tls-key", str(identity.key)])
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        # Trust exactly this server's key (the flag needs a profile directory of its own).
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS + [f"--ignore-certificate-errors-spki-list={identity.spki_sha256()}"])
        try:
            page = context.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            response = page.goto(f"https://127.0.0.1:{srv.port}/healthz")
            assert response.ok
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
            for n in range(3):
                append(log, f"live line {n}\n")
                wait_until(lambda: all(f"live line {n}" in texts for texts in page.evaluate("window.received")),
                           what=f"live line {n} on all {STREAMS} EventSources")
            assert page.evaluate("window.received") == [[f"live line {n}" for n in range(3)]] * STREAMS
            # The page and its 12 streams on one connection (curl's /metrics connections have closed).
            wait_until(lambda: established(srv.port) == 1, what="one established connection")
            protocols = page.evaluate("performance.getEntriesByType('resource').map(e => e.nextHopProtocol)")
            assert set(protocols) <= {"h2"}, json.dumps(protocols)
            assert problems == []
        finally:
            context.close()
