"""Churn: 20,000 connects and disconnects — plain requests, streams read a little, streams cut
mid-response with a reset, heads never finished — leave tailsse's open descriptors and RSS where
they were after a warm-up."""

from __future__ import annotations

import os
import socket
import struct
import threading

from http_client import request
from server import append, wait_until

TOTAL = int(os.environ.get("TAILSSE_CHURN_CONNECTIONS", "20000"))
THREADS = 4


def one(port: int, kind: int, source: str) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as sock:
        if kind == 0:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            while sock.recv(65536):
                pass
        elif kind == 1:
            sock.sendall(b"GET /sources/app?tail=5 HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
            sock.recv(65536)
        elif kind == 2:
            sock.sendall(b"GET /sources/app?tail=all HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            sock.recv(1024)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset mid-response
        elif kind == 3:
            sock.sendall(b"GET /sources HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # half a head, then gone
        else:
            sock.sendall(b"GET /events?source=app&tail=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            sock.recv(65536)


def churn(port: int, count: int, offset: int) -> None:
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for n in range(index, count, THREADS):
                one(port, n % 5, f"127.0.0.{2 + (offset + n) % 200}")
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_connects_and_disconnects_leave_descriptors_and_memory_flat(tailsse, logdir):
    log = logdir / "app.log"
    log.write_text("".join(f"line {i:05d} {'x' * 60}\n" for i in range(3000)))
    srv = tailsse({"app": log})
    churn(srv.port, 2000, 0)
    wait_until(lambda: request(srv.port, "/metrics").body.count(b"tailsse_streams 0") == 1, 30, "the warm-up's streams to end")
    fds_before, rss_before = descriptors(srv.pid), srv.rss_bytes()
    churn(srv.port, TOTAL, 2000)
    append(log, "after the churn\n")
    wait_until(lambda: request(srv.port, "/metrics").body.count(b"tailsse_streams 0") == 1, 30, "the churn's streams to end")
    wait_until(lambda: descriptors(srv.pid) <= fds_before + 4, 30, "descriptors back where they were")
    fds_after, rss_after = descriptors(srv.pid), srv.rss_bytes()
    print(f"{TOTAL} connections: descriptors {fds_before} -> {fds_after}, RSS {rss_before / 1048576:.1f} -> {rss_after / 1048576:.1f} MiB")
    assert fds_after <= fds_before + 4
    assert rss_after - rss_before < 24 << 20, "RSS grew by more than 24 MiB over the churn"
    assert srv.running() and request(srv.port, "/healthz").status == 200
