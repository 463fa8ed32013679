"""A real systemd booted in systemd-nspawn (the host's own /usr, volatile), driven from the host.

Each container runs in a cgroup of its own, removed with nspawn's `payload`/`supervisor`
leftovers when it stops, so concurrent runs do not meet.
"""

from __future__ import annotations

import os
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


class Container:
    def __init__(self, binds: list[tuple[str, str, bool]], kernel_args: list[str], log: Path) -> None:
        self.name = f"tailsse-test-{os.getpid()}-{int(time.monotonic() * 1000)}"
        self.log_path = log
        self.cgroups: list[Path] = []
        args = ["systemd-nspawn", "-D", "/", "--volatile=yes", "--boot", "--register=no", "--keep-unit",
                "--private-network", "--quiet", f"--machine={self.name}"]
        for source, target, writable in binds:
            args.append(f"--bind={source}:{target}" if writable else f"--bind-ro={source}:{target}")
        args += ["--", "systemd.firstboot=no", "systemd.show_status=no", *kernel_args]
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
        for leftover in ("nspawn/propagate", "nspawn", "nspawn-root"):
            try:
                (Path("/run/systemd") / leftover).rmdir()
            except OSError:
                pass


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
