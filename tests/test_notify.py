"""sd_notify outside systemd: a datagram socket of the test's own stands in for systemd's
NOTIFY_SOCKET and records READY=1, STATUS=, WATCHDOG=1, RELOADING=1 and STOPPING=1."""

from __future__ import annotations

import select
import signal
import socket
import time

from http_client import SSEStream
from server import append


class NotifySocket:
    def __init__(self, path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[dict[str, str]] = []

    def wait_for(self, predicate, timeout: float = 20, what: str = "a notification") -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages:
                if predicate(message):
                    self.messages.remove(message)
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; got {self.messages}")
            ready, _, _ = select.select([self.sock], [], [], left)
            if ready:
                data = self.sock.recv(4096).decode()
                self.messages.append(dict(line.split("=", 1) for line in data.split("\n") if "=" in line))

    def close(self) -> None:
        self.sock.close()


def test_ready_status_watchdog_reload_and_stopping(tailsse, logdir, tmp_path):
    notify = NotifySocket(tmp_path / "notify.sock")
    log = logdir / "app.log"
    log.write_text("one\n")
    conf = tmp_path / "tailsse.conf"
    conf.write_text(f"file = app={log}\n")
    try:
        srv = tailsse({}, extra=["--config", str(conf)],
                      wrapper=["env", f"NOTIFY_SOCKET={notify.path}", "WATCHDOG_USEC=400000"])
        ready = notify.wait_for(lambda m: "READY" in m, what="READY=1")
        assert ready == {"READY": "1", "STATUS": "0 clients, 1 source"}

        # Watchdog pings every half WATCHDOG_USEC, each after a round trip through the event loop.
        start = time.monotonic()
        for _ in range(3):
            notify.wait_for(lambda m: m == {"WATCHDOG": "1"}, timeout=5, what="WATCHDOG=1")
        assert time.monotonic() - start < 3

        with SSEStream(srv.port, "/sources/app?tail=1") as stream:
            stream.wait_messages(1)
            notify.wait_for(lambda m: m.get("STATUS") == "1 client, 1 source", what="STATUS with one client")
            append(log, "two\n")
            stream.wait_messages(2)

        notify.wait_for(lambda m: m.get("STATUS") == "0 clients, 1 source", what="STATUS after the client left")

        conf.write_text(f"file = app={log}\nfile = b\n")
        srv.proc.send_signal(signal.SIGHUP)
        notify.wait_for(lambda m: m == {"RELOADING": "1"}, what="RELOADING=1")
        notify.wait_for(lambda m: m == {"READY": "1"}, what="READY=1 after the reload")
        failed = notify.wait_for(lambda m: m.get("STATUS", "").startswith("0 clients, 1 source; reload failed: "), what="the reload error in STATUS")
        assert f"{conf}:2: file must be NAME=PATH" in failed["STATUS"]

        assert srv.stop() == 0
        notify.wait_for(lambda m: m.get("STOPPING") == "1", what="STOPPING=1")
    finally:
        notify.close()


def test_nothing_is_sent_without_notify_socket(tailsse, logdir):
    log = logdir / "app.log"
    log.write_text("one\n")
    srv = tailsse({"app": log}, wrapper=["env", "-u", "NOTIFY_SOCKET", "WATCHDOG_USEC=400000"])
    with SSEStream(srv.port, "/sources/app?tail=1") as stream:
        assert stream.wait_messages(1)[0].json["text"] == "one"
    assert srv.stop() == 0
