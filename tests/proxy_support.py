"""Debian's nginx and Caddy in the foreground, configured with the README's proxy settings word for
word ("Behind nginx", "Behind Caddy"), for the proxy tests."""

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


def readme_block(language: str) -> str:
    """The README's first fenced block in `language`."""
    return README.read_text().split(f"```{language}\n", 1)[1].split("```", 1)[0]


class Proxy:
    """A proxy process in the foreground, in a directory of its own, on a loopback port."""

    name = "proxy"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()

    def start(self, command: list[str], env: dict | None = None) -> None:
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(self.directory / "stderr.log", "wb"), env=env)
        wait_until(self._listening, 20, f"{self.name} to listen")

    def _listening(self) -> bool:
        assert self.proc.poll() is None, "".join(p.read_text() for p in sorted(self.directory.glob("*.log")))
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


class Nginx(Proxy):
    """nginx with the README's `location /logs/` block, round-robin over `upstreams`."""

    name = "nginx"

    def __init__(self, directory: Path, upstreams: list[int]) -> None:
        super().__init__(directory)
        servers = "".join(f"        server 127.0.0.1:{port};\n" for port in upstreams)
        location = readme_block("nginx").replace("http://127.0.0.1:8111", "http://tailsse")
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
        self.start([NGINX, "-p", str(directory), "-c", str(directory / "nginx.conf")])


class Caddy(Proxy):
    """Caddy on a plain-HTTP loopback site with the README's `handle` block, to `upstreams`."""

    name = "caddy"

    def __init__(self, directory: Path, upstreams: list[int]) -> None:
        super().__init__(directory)
        block = readme_block("caddy")
        handle = block[block.index("    handle"):block.rindex("}")]
        handle = handle.replace("127.0.0.1:8111", " ".join(f"127.0.0.1:{port}" for port in upstreams))
        (directory / "Caddyfile").write_text(
            "{\n    admin off\n    auto_https off\n}\n"
            f"http://127.0.0.1:{self.port} {{\n{handle}}}\n"
        )
        env = {**os.environ, "HOME": str(directory), "XDG_DATA_HOME": str(directory), "XDG_CONFIG_HOME": str(directory)}
        self.start([CADDY, "run", "--config", str(directory / "Caddyfile"), "--adapter", "caddyfile"], env=env)


def _proxies(kind: type[Proxy], binary: str, tmp_path: Path):
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} not found: `make test` installs Debian's {kind.name}")
    started: list[Proxy] = []

    def make(upstreams: list[int]) -> Proxy:
        directory = tmp_path / f"{kind.name}{len(started)}"
        directory.mkdir()
        started.append(kind(directory, upstreams))
        return started[-1]

    yield make
    for proxy in started:
        proxy.stop()


@pytest.fixture
def nginx(tmp_path):
    """A factory: nginx([port, ...]) starts nginx in front of those tailsse instances."""
    yield from _proxies(Nginx, NGINX, tmp_path)


@pytest.fixture
def caddy(tmp_path):
    """A factory: caddy([port, ...]) starts Caddy in front of those tailsse instances."""
    yield from _proxies(Caddy, CADDY, tmp_path)
