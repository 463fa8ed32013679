"""tailsse under a real systemd (booted in systemd-nspawn), installed by `make install` with the
hardened unit: started through its socket by the first connection, READY=1 and STATUS=, watchdog
pings, streaming a file (and the journal, when this build has --journal), reload on
`systemctl reload`, and a graceful stop."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from server import append, binary, wait_until
from systemd_container import Container, CurlStream, unavailable

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
