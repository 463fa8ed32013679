"""Socket activation without systemd: `systemd-socket-activate` listens, starts tailsse on the first
connection and passes the socket (LISTEN_FDS); tailsse serves on it instead of binding."""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

from http_client import HTTPError, SSEStream, request
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


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None, reason="systemd-socket-activate is not installed")
def test_a_passed_socket_open_to_the_network_needs_a_token_file(logdir, tmp_path):
    """The open-door refusal looks at the socket systemd passes, not at --listen: a socket on
    0.0.0.0 without a token file stops the start; with one, tailsse serves and wants the token."""
    log = logdir / "app.log"
    log.write_text("one\n")
    tokens = tmp_path / "tokens"
    tokens.write_text("socket-token-0123456789abcdef\n")
    tokens.chmod(0o600)
    for extra, serves in (([], False), (["--token-file", str(tokens)], True)):
        port = free_port()
        proc = subprocess.Popen(["systemd-socket-activate", "-l", f"0.0.0.0:{port}", binary(), "--file", f"app={log}", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            def listening() -> bool:
                with socket.socket() as probe:
                    return probe.connect_ex(("127.0.0.1", port)) == 0

            wait_until(listening, what="systemd-socket-activate to listen")
            if serves:
                assert request(port, "/sources").status == 401
                assert request(port, "/sources", headers={"Authorization": "Bearer socket-token-0123456789abcdef"}).status == 200
            else:
                with pytest.raises((HTTPError, OSError)):
                    request(port, "/healthz", timeout=10)
                assert proc.wait(timeout=20) != 0
        finally:
            proc.terminate()
            try:
                _, err = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
        if not serves:
            assert f"refusing to serve 0.0.0.0:{port} without a token file".encode() in err, err[-2000:]
