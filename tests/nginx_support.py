"""Debian's nginx in the foreground, with the README's proxy settings, for the proxy tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from server import wait_until

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx in the foreground with a configuration of its own, in a directory of its own."""

    def __init__(self, directory: Path, upstreams: list[int]) -> None:
        self.directory = directory
        self.port = free_port()
        servers = "".join(f"        server 127.0.0.1:{port};\n" for port in upstreams)
        # The location block is the README's ("Behind a reverse proxy"), word for word.
        readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
        location = readme.split("```nginx\n", 1)[1].split("```", 1)[0].replace("http://127.0.0.1:8111", "http://tailsse")
        (directory / "nginx.conf").write_text(
            "daemon off;\nmaster_process on;\nworker_processes 1;\nuser root;\n"
            f"pid {directory}/nginx.pid;\nerror_log {directory}/error.log info;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            f"    access_log {directory}/access.log;\n"
            f"    client_body_temp_path {directory}/body; proxy_temp_path {directory}/proxy;\n"
            f"    fastcgi_temp_path {directory}/fastcgi; uwsgi_temp_path {directory}/uwsgi; scgi_temp_path {directory}/scgi;\n"
            f"    upstream tailsse {{\n{servers}    }}\n"
            f"    server {{\n        listen 127.0.0.1:{self.port};\n{location}    }}\n"
            "}\n"
        )
        self.proc = subprocess.Popen([NGINX, "-p", str(directory), "-c", str(directory / "nginx.conf")],
                                     stdout=subprocess.DEVNULL, stderr=open(directory / "stderr.log", "wb"))
        wait_until(self._listening, 20, "nginx to listen")

    def _listening(self) -> bool:
        assert self.proc.poll() is None, (self.directory / "stderr.log").read_text() + (self.directory / "error.log").read_text()
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def nginx(tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.fail(f"{NGINX} not found: `make test` installs Debian's nginx")
    started: list[Nginx] = []

    def make(upstreams: list[int]) -> Nginx:
        directory = tmp_path / f"nginx{len(started)}"
        directory.mkdir()
        started.append(Nginx(directory, upstreams))
        return started[-1]

    yield make
    for proxy in started:
        proxy.stop()
