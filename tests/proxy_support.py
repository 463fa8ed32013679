"""Debian's nginx and Caddy in the foreground, with the README's proxy settings, for the proxy tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from server import wait_until

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CADDY = shutil.which("caddy") or "/usr/bin/caddy"
README = Path(__file__).resolve().parent.parent / "README.md"


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
        location = README.read_text().split("```nginx\n", 1)[1].split("```", 1)[0].replace("http://127.0.0.1:8111", "http://tailsse")
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


class Caddy:
    """Caddy in the foreground on a plain-HTTP loopback site, with the README's `handle` block."""

    def __init__(self, directory: Path, upstream: int) -> None:
        self.directory = directory
        self.port = free_port()
        block = README.read_text().split("```caddy\n", 1)[1].split("```", 1)[0]
        handle = block[block.index("    handle"):block.rindex("}")].replace("127.0.0.1:8111", f"127.0.0.1:{upstream}")
        (directory / "Caddyfile").write_text(
            "{\n    admin off\n    auto_https off\n}\n"
            f"http://127.0.0.1:{self.port} {{\n{handle}}}\n"
        )
        env = {**os.environ, "HOME": str(directory), "XDG_DATA_HOME": str(directory), "XDG_CONFIG_HOME": str(directory)}
        self.proc = subprocess.Popen([CADDY, "run", "--config", str(directory / "Caddyfile"), "--adapter", "caddyfile"],
                                     stdout=subprocess.DEVNULL, stderr=open(directory / "stderr.log", "wb"), env=env)
        wait_until(self._listening, 20, "caddy to listen")

    def _listening(self) -> bool:
        assert self.proc.poll() is None, (self.directory / "stderr.log").read_text()
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
def caddy(tmp_path):
    if not os.access(CADDY, os.X_OK):
        pytest.fail(f"{CADDY} not found: `make test` installs Debian's caddy")
    started: list[Caddy] = []

    def make(upstream: int) -> Caddy:
        directory = tmp_path / f"caddy{len(started)}"
        directory.mkdir()
        started.append(Caddy(directory, upstream))
        return started[-1]

    yield make
    for proxy in started:
        proxy.stop()
