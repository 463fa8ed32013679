"""tailsse under a real systemd (booted in systemd-nspawn), installed by `make install` with the
hardened unit: started through its socket by the first connection, READY=1 and STATUS=, watchdog
pings, streaming a file (and the journal, when this build has --journal), reload on
`systemctl reload`, and a graceful stop."""

from __future__ import annotations

import base64
import grp
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from server import append, binary, wait_until
from systemd_container import Container, CurlStream, unavailable
from tls_support import make_ca, make_identity

ROOT = Path(__file__).resolve().parent.parent
PORT = 8111


def runtime_library_dirs(path: str) -> list[str]:
    """Directories outside /usr and /lib the binary loads libraries from (the Swift runtime in the
    toolchain): the container, which has only the host's /usr, needs them too."""
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
    dirs = {str(Path(line.split("=>")[1].split("(")[0].strip()).parent) for line in out.splitlines() if "=>" in line and "/" in line.split("=>")[1]}
    return sorted(d for d in dirs if not d.startswith(("/usr/", "/lib", "/lib64")))


def has_journal_option() -> bool:
    return "--journal" in subprocess.run([binary(), "--help"], capture_output=True, text=True).stdout


@pytest.fixture
def installed(tmp_path):
    """`make install` into a DESTDIR, with a test configuration in place of the example."""
    destdir = tmp_path / "root"
    subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "install", f"DESTDIR={destdir}", "PREFIX=/usr/local",
                    f"BUILT={binary()}"], check=True, capture_output=True)
    for path in ["usr/local/bin/tailsse", "usr/local/share/tailsse/static/index.html", "usr/local/lib/systemd/system/tailsse.service",
                 "usr/local/lib/systemd/system/tailsse.socket", "etc/tailsse/tailsse.conf"]:
        assert (destdir / path).exists(), f"make install did not install {path}"
    # Never over an existing configuration.
    (destdir / "etc/tailsse/tailsse.conf").write_text("# mine\n")
    subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "install", f"DESTDIR={destdir}", "PREFIX=/usr/local",
                    f"BUILT={binary()}"], check=True, capture_output=True)
    assert (destdir / "etc/tailsse/tailsse.conf").read_text() == "# mine\n"
    return destdir


@pytest.mark.skipif(unavailable() is not None, reason=unavailable() or "")
def test_socket_activated_hardened_service(installed, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    logs.chmod(0o755)
    (logs / "app.log").write_text("app-0\n")
    (logs / "extra.log").write_text("extra-0\n")
    for f in logs.iterdir():
        f.chmod(0o644)
    journal = has_journal_option()
    conf = installed / "etc/tailsse/tailsse.conf"
    base = "file = app=/var/log/tailsse-test/app.log\nheartbeat = 1\n" + ("journal = yes\n" if journal else "")
    conf.write_text(base)
    container = Container(
        binds=[(str(installed / "usr/local"), "/usr/local", False), (str(installed / "etc/tailsse"), "/etc/tailsse", False),
               (str(logs), "/var/log/tailsse-test", False)] + [(d, d, False) for d in runtime_library_dirs(binary())],
        kernel_args=["systemd.wants=tailsse.socket"],
        log=tmp_path / "nspawn.log",
    )
    streams: list[CurlStream] = []
    try:
        container.wait_booted()
        assert container.show("tailsse.socket", "ActiveState")["ActiveState"] == "active"
        # A short watchdog so that pings can be seen within the test.
        container.run("sh", "-c", "mkdir -p /etc/systemd/system/tailsse.service.d && "
                      "printf '[Service]\\nWatchdogSec=2s\\n' > /etc/systemd/system/tailsse.service.d/watchdog.conf && "
                      "systemctl daemon-reload")
        assert container.show("tailsse.service", "ActiveState")["ActiveState"] == "inactive", "started before any connection"

        # The first connection starts the service through the socket.
        app = CurlStream(container, "/sources/app?tail=1")
        streams.append(app)
        app.wait_for(b'"text":"app-0"')
        state = container.show("tailsse.service", "ActiveState", "SubState", "StatusText", "MainPID", "Type",
                               "PrivateNetwork", "DynamicUser", "NRestarts", "WatchdogUSec")
        assert state["ActiveState"] == "active", state  # Type=notify: active only after READY=1
        assert state["Type"] == "notify" and state["PrivateNetwork"] == "yes" and state["DynamicUser"] == "yes", state
        assert state["WatchdogUSec"] == "2s", state
        main_pid = state["MainPID"]
        wait_until(lambda: container.show("tailsse.service", "StatusText")["StatusText"].startswith("1 client, "),
                   what="STATUS= with one client")
        append(logs / "app.log", "app-1\n")
        app.wait_for(b'"text":"app-1"')

        # WATCHDOG=1 pings keep coming (every second with WatchdogSec=2s).
        first = int(container.show("tailsse.service", "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"])
        wait_until(lambda: int(container.show("tailsse.service", "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]) > first,
                   timeout=10, what="a watchdog ping")

        if journal:
            js = CurlStream(container, "/sources/journal?tail=0")
            streams.append(js)
            js.wait_for(b"retry:")
            marker = f"tailsse-nspawn-{time.monotonic_ns()}"
            container.run("systemd-cat", "-t", "tailsse-test", "echo", marker)
            js.wait_for(marker.encode())
        else:
            print("tailsse has no --journal option yet: the journal part of this test did not run")

        # Reload: a new source appears, the unchanged one keeps its client, the process stays.
        conf.write_text(base + "file = extra=/var/log/tailsse-test/extra.log\n")
        container.run("systemctl", "reload", "tailsse.service")

        def listed() -> list[str]:
            out = container.run("curl", "-s", f"http://127.0.0.1:{PORT}/sources").stdout
            return [s["name"] for s in json.loads(out)]

        wait_until(lambda: "extra" in listed(), what="the new source after reload")
        extra = CurlStream(container, "/sources/extra?tail=1")
        streams.append(extra)
        extra.wait_for(b'"text":"extra-0"')
        append(logs / "app.log", "app-2\n")
        app.wait_for(b'"text":"app-2"')
        assert b"event: end" not in app.out
        wait_until(lambda: container.show("tailsse.service", "ActiveState")["ActiveState"] == "active", what="active after reload")
        assert container.show("tailsse.service", "MainPID")["MainPID"] == main_pid

        # A graceful stop: well within TimeoutStopSec, exit status 0, streams ended as HTTP says.
        started = time.monotonic()
        container.run("systemctl", "stop", "tailsse.service", timeout=60)
        elapsed = time.monotonic() - started
        result = container.show("tailsse.service", "ActiveState", "Result", "ExecMainStatus", "ExecMainCode")
        assert result["ActiveState"] == "inactive" and result["Result"] == "success", result
        assert result["ExecMainStatus"] == "0", result
        assert elapsed < 10, f"stopping took {elapsed:.1f}s"
        for stream in (app, extra):
            assert stream.finish() == 0, f"curl did not see a clean end: {bytes(stream.out)[-200:]!r}"
        logs_text = container.run("journalctl", "-u", "tailsse.service", "--no-pager", "-o", "cat").stdout.decode()
        assert "SIGSYS" not in logs_text and "core-dump" not in logs_text, logs_text[-2000:]
    finally:
        for stream in streams:
            stream.close()
        container.stop()


TLS_DROP_IN = """[Service]
LoadCredential=tls.crt:/etc/tailsse/tls/tailsse.pem
LoadCredential=tls.key:/etc/tailsse/tls/tailsse.key
ExecStart=
ExecStart=/usr/local/bin/tailsse --config /etc/tailsse/tailsse.conf --tls-cert %d/tls.crt --tls-key %d/tls.key
"""


@pytest.mark.skipif(unavailable() is not None, reason=unavailable() or "")
def test_socket_activated_service_serves_https_with_credentials(installed, tmp_path):
    """The README's drop-in: the key stays root-only (0600) in /etc/tailsse/tls; systemd hands the
    service a private copy (LoadCredential=), and the socket-activated unit speaks HTTP/2 over TLS.
    A renewed certificate is served after `systemctl restart` (systemd 252 fills the credentials
    only at start), the socket staying open meanwhile."""

    logs = tmp_path / "logs"
    logs.mkdir()
    logs.chmod(0o755)
    (logs / "app.log").write_text("app-0\n")
    (logs / "app.log").chmod(0o644)
    conf = installed / "etc/tailsse/tailsse.conf"
    conf.write_text("file = app=/var/log/tailsse-test/app.log\nheartbeat = 1\ntoken-file = /etc/tailsse/tokens\n")
    # The README's token file: root writes it, the service reads it through the adm group (0640).
    token = "nspawn-token-0123456789abcdefgh"
    (installed / "etc/tailsse/tokens").write_text(f"{token}\n")
    os.chown(installed / "etc/tailsse/tokens", 0, grp.getgrnam("adm").gr_gid)
    (installed / "etc/tailsse/tokens").chmod(0o640)
    tls_dir = installed / "etc/tailsse/tls"
    ca = make_ca(tmp_path / "ca")
    first = make_identity(tmp_path / "first", "tailsse", ca)
    tls_dir.mkdir(mode=0o700)
    for made in (first.cert, first.key):
        (tls_dir / made.name).write_bytes(made.read_bytes())
    (tls_dir / "tailsse.key").chmod(0o600)
    container = Container(
        binds=[(str(installed / "usr/local"), "/usr/local", False), (str(installed / "etc/tailsse"), "/etc/tailsse", False),
               (str(logs), "/var/log/tailsse-test", False), (str(ca[0]), "/run/test-ca.pem", False)]
        + [(d, d, False) for d in runtime_library_dirs(binary())],
        kernel_args=["systemd.wants=tailsse.socket"],
        log=tmp_path / "nspawn.log",
    )
    base = f"https://localhost:{PORT}"
    tls_args = ("--cacert", "/run/test-ca.pem", "--resolve", f"localhost:{PORT}:127.0.0.1")
    curl = ["curl", "-sS", *tls_args, "-H", f"Authorization: Bearer {token}"]
    live = None
    try:
        container.wait_booted()
        container.run("sh", "-c", "mkdir -p /etc/systemd/system/tailsse.service.d && cat > "
                      "/etc/systemd/system/tailsse.service.d/tls.conf && systemctl daemon-reload",
                      input=TLS_DROP_IN.encode())

        # The first connection, over TLS, starts the service through the socket and gets HTTP/2.
        out = container.run(*curl, "--http2", "-w", "\n%{http_version}", f"{base}/sources").stdout.decode()
        body, version = out.rsplit("\n", 1)
        assert version == "2" and [s["name"] for s in json.loads(body)] == ["app"], out
        state = container.show("tailsse.service", "ActiveState", "DynamicUser", "LoadCredential")
        assert state["ActiveState"] == "active" and state["DynamicUser"] == "yes", state
        unauthorized = container.run("curl", "-sS", *tls_args, "-o", "/dev/null", "-w", "%{http_code}", f"{base}/sources").stdout
        assert unauthorized == b"401", "the hardened unit reads the token file and asks for a token"
        live = CurlStream(container, "/sources/app?tail=1", base=base, curl_args=("--http2", *tls_args, "-H", f"Authorization: Bearer {token}"))
        live.wait_for(b'"text":"app-0"')
        append(logs / "app.log", "app-1\n")
        live.wait_for(b'"text":"app-1"')

        # The service reads its private copy of the key (the original stays root's, 0600).
        creds = container.run("ls", "-l", "/run/credentials/tailsse.service/").stdout.decode()
        assert "tls.key" in creds and "-r--------" in creds, creds

        # Renewal: new files, then a restart (the socket keeps accepting meanwhile).
        renewed = make_identity(tmp_path / "renewed", "tailsse", ca)
        (tls_dir / "tailsse.pem").write_bytes(renewed.cert.read_bytes())
        (tls_dir / "tailsse.key").write_bytes(renewed.key.read_bytes())

        def served() -> bytes:
            out = container.run("sh", "-c", f"openssl s_client -connect 127.0.0.1:{PORT} -servername localhost "
                                "</dev/null 2>/dev/null | openssl x509 -outform der | base64 -w0").stdout.decode()
            return base64.b64decode(out)

        # A reload re-reads the credentials directory, which systemd filled at start.
        container.run("systemctl", "reload", "tailsse.service", timeout=60)
        assert container.show("tailsse.service", "ActiveState")["ActiveState"] == "active"
        print("after systemctl reload the", "renewed" if served() == renewed.der() else "first", "certificate is served")
        container.run("systemctl", "restart", "tailsse.service", timeout=60)
        assert served() == renewed.der(), "the renewed certificate is not served after the restart"
        assert container.show("tailsse.service", "ActiveState")["ActiveState"] == "active"
        logs_text = container.run("journalctl", "-u", "tailsse.service", "--no-pager", "-o", "cat").stdout.decode()
        assert "BEGIN" not in logs_text and "PRIVATE" not in logs_text and token not in logs_text
    finally:
        if live is not None:
            live.close()
        container.stop()
