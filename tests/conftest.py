"""Fixtures: the real tailsse binary, started per test on a free port, with files in a temp dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server import Server, binary  # noqa: E402


def pytest_report_header(config):
    return f"tailsse binary: {binary()}"


def pytest_sessionstart(session):
    if not os.access(binary(), os.X_OK):
        raise pytest.UsageError(f"tailsse binary not found at {binary()}: build it (swift build -c release) or set TAILSSE_BIN")


@pytest.fixture
def tailsse(tmp_path):
    """A factory: tailsse({"app": path}, **options) starts a server and returns it (stopped at the end)."""
    servers: list[Server] = []

    def make(files, *, start: bool = True, log_dir=None, **kw) -> Server:
        server = Server(files, Path(log_dir or tmp_path), name=f"tailsse{len(servers)}", **kw)
        servers.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in servers:
        crashed = server.proc is not None and server.proc.poll() not in (None, 0)
        server.kill()
        if crashed:
            print(f"tailsse exited with {server.proc.returncode}")
        print(server.log_tail(60))


@pytest.fixture
def logdir(tmp_path) -> Path:
    d = tmp_path / "logs"
    d.mkdir()
    return d
