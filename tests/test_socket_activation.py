"""Socket activation without systemd: `systemd-socket-activate` listens, starts tailsse on the first
connection and passes the socket (LISTEN_FDS); tailsse serves on it instead of binding."""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

from http_client import SSEStream, request
from server import append, binary, wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None, reason="systemd-socket-activate is not installed")
def test_serves_on_the_socket_it_is_given(logdir, tmp_path):
    log = logdir / "app.log"
    log.write_text("one\n")
    port = free_port()
    stderr = open(tmp_path / "stderr.log", "wb")
    # --listen names a port that is taken: only the passed socket can work.
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    proc = subprocess.Popen(["systemd-socket-activate", "-l", f"127.0.0.1:{port}", binary(),
                             "--listen", f"127.0.0.1:{blocker.getsockname()[1]}", "--file", f"app={log}"],
                            stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL)
    try:
        def listening() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, what="systemd-socket-activate to listen")
        with SSEStream(port, "/sources/app?tail=1") as stream:
            assert stream.wait_messages(1)[0].json["text"] == "one"
            append(log, "two\n")
            assert stream.wait_messages(2)[-1].json["text"] == "two"
        assert request(port, "/healthz").status == 200
        proc.terminate()
        assert proc.wait(timeout=20) == 0
        assert f"listening on http://127.0.0.1:{port}/".encode() in proc.stdout.read()
    finally:
        blocker.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stderr.close()
