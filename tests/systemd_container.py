"""A real systemd booted in systemd-nspawn, driven from the host: the host's own /usr (volatile), or
a clean Debian made by debootstrap (`debian_root`, cached outside the clone) under a throw-away
overlay.

Each container runs in a cgroup of its own, removed with nspawn's `payload`/`supervisor`
leftovers when it stops, so concurrent runs do not meet.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

from server import wait_until


def unavailable() -> str | None:
    """Why nspawn cannot run here, or None."""
    if os.geteuid() != 0:
        return "systemd-nspawn needs root"
    if shutil.which("systemd-nspawn") is None:
        return "systemd-nspawn is not installed (apt-get install systemd-container)"
    if not Path("/lib/systemd/systemd").exists():
        return "no systemd to boot in the container"
    return None


# Debian roots made by debootstrap live here, outside the repository (CI starts from a fresh clone).
CACHE = Path(os.environ.get("TAILSSE_TEST_CACHE", "/var/cache/tailsse-tests"))


def apt_mirror(suite: str) -> str:
    """The Debian mirror apt uses here for `suite` (deb822 .sources or one-line sources.list)."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list"),
                                                                            *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":
            for stanza in text.split("\n\n"):
                fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
                if suite in fields.get("Suites", "").split() and "deb" in fields.get("Types", "").split():
                    return fields["URIs"].split()[0]
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line).split()
                if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                    return words[1]
    raise AssertionError(f"no apt source for {suite} in /etc/apt")


def debian_root(suite: str = "bookworm", packages: tuple[str, ...] = ("systemd", "systemd-sysv", "curl")) -> Path:
    """A minimal Debian `suite` (debootstrap --variant=minbase) with `packages`, from the mirror apt
    uses here. Made once (~1 min) and cached in CACHE; runs never write to it (see `Container`)."""
    root = CACHE / f"{suite}-minbase-{'-'.join(packages)}"
    if root.is_dir():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not root.is_dir():
            partial = root.with_name(f"{root.name}.partial-{os.getpid()}")
            shutil.rmtree(partial, ignore_errors=True)
            result = subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, str(partial),
                                     apt_mirror(suite)], capture_output=True, text=True, timeout=900)
            if result.returncode != 0:
                shutil.rmtree(partial, ignore_errors=True)
                raise AssertionError(f"debootstrap failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
            partial.rename(root)
    return root


# Services of packages `make test` installs for other tests (the proxy tests' nginx and Caddy): a
# booted copy of the host would start them, and they keep its boot from finishing in time.
UNRELATED_SERVICES = ("nginx.service", "caddy.service", "caddy-api.service")


class Container:
    """`directory` "/" boots the host's /usr with `--volatile=yes`; another root boots under
    `--volatile=overlay`, so what the test installs lives in memory and the root stays clean."""

    def __init__(self, binds: list[tuple[str, str, bool]], kernel_args: list[str], log: Path, directory: str = "/") -> None:
        self.name = f"tailsse-test-{os.getpid()}-{int(time.monotonic() * 1000)}"
        self.log_path = log
        self.cgroups: list[Path] = []
        volatile = "yes" if directory == "/" else "overlay"
        args = ["systemd-nspawn", "-D", directory, f"--volatile={volatile}", "--boot", "--register=no", "--keep-unit",
                "--private-network", "--quiet", f"--machine={self.name}"]
        for source, target, writable in binds:
            args.append(f"--bind={source}:{target}" if writable else f"--bind-ro={source}:{target}")
        masks = [f"systemd.mask={unit}" for unit in UNRELATED_SERVICES]
        args += ["--", "systemd.firstboot=no", "systemd.show_status=no", *masks, *kernel_args]
        self._make_cgroups()
        procs = " ".join(f"echo $$ > {c}/cgroup.procs;" for c in self.cgroups)
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(["sh", "-c", f"{procs} exec \"$@\"", "sh", *args], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.leader = wait_until(self._leader, timeout=30, what="the container's init")

    def _make_cgroups(self) -> None:
        hybrid = [Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified")]
        roots = [r for r in hybrid if (r / "cgroup.procs").exists()] or [Path("/sys/fs/cgroup")]
        for root in roots:
            group = root / self.name
            group.mkdir()
            self.cgroups.append(group)

    def _leader(self) -> int | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited with {self.proc.returncode}:\n{self.output()}")
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return None
        for child in children:
            try:
                if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                    return int(child)
            except OSError:
                continue
        return None

    def run(self, *command: str, timeout: float = 30, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(["nsenter", "-t", str(self.leader), "-a", *command], capture_output=True,
                                timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} exited {result.returncode}: {result.stdout.decode()} {result.stderr.decode()}")
        return result

    def sh(self, script: str, timeout: float = 120, check: bool = True) -> str:
        """Runs a shell script in the container with the container's own environment; its stdout."""
        result = self.run("env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive",
                          "sh", "-c", script, timeout=timeout, check=check)
        return result.stdout.decode()

    def popen(self, *command: str) -> subprocess.Popen:
        return subprocess.Popen(["nsenter", "-t", str(self.leader), "-a", *command], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        out = self.run("systemctl", "show", unit, *(f"--property={p}" for p in properties)).stdout.decode()
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_booted(self, timeout: float = 60) -> str:
        """Waits until systemd finished booting; returns `running` or `degraded`."""
        def state() -> str | None:
            result = self.run("systemctl", "is-system-running", check=False)
            out = result.stdout.decode().strip()
            return out if out in ("running", "degraded") else None

        return wait_until(state, timeout=timeout, what=f"the container to boot\n{self.output()}")

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # nspawn asks the container's systemd to power off
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
        for group in self.cgroups:
            _remove_cgroup(group)
        shutil.rmtree(Path("/run/systemd/nspawn/propagate") / self.name, ignore_errors=True)
        # nspawn's own directories, once no other container uses them (rmdir leaves them otherwise).
        for leftover in ("nspawn/propagate", "nspawn/locks", "nspawn", "nspawn-root"):
            try:
                (Path("/run/systemd") / leftover).rmdir()
            except OSError:
                pass


class CurlStream:
    """`curl -N` inside a container, its output read as it comes."""

    def __init__(self, container: Container, path: str, accept: str = "text/event-stream", port: int = 8111,
                 base: str | None = None, curl_args: tuple[str, ...] = ()) -> None:
        self.proc = container.popen("curl", "-sN", *curl_args, "-H", f"Accept: {accept}", f"{base or f'http://127.0.0.1:{port}'}{path}")
        self.out = bytearray()

    def wait_for(self, needle: bytes, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while needle not in self.out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {needle!r}; got {bytes(self.out)[-600:]!r}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    if needle in self.out:
                        return
                    raise AssertionError(f"curl ended ({self.proc.wait()}) before {needle!r}: {bytes(self.out)[-600:]!r} {self.proc.stderr.read()!r}")
                self.out += chunk

    def finish(self, timeout: float = 30) -> int:
        rest, _ = self.proc.communicate(timeout=timeout)
        self.out += rest
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _remove_cgroup(group: Path) -> None:
    """Removes a cgroup tree depth first, killing whatever is left in it."""
    if not group.exists():
        return
    for child in [p for p in group.iterdir() if p.is_dir()]:
        _remove_cgroup(child)
    deadline = time.monotonic() + 10
    while True:
        try:
            pids = (group / "cgroup.procs").read_text().split()
        except OSError:
            pids = []
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        try:
            group.rmdir()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
