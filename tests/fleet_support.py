"""A fleet in network namespaces: hosts that ship their journals with systemd-journal-upload to a
systemd-journal-remote collector, as README "Watching a fleet" sets it up.

`Fleet` makes one collector namespace running `systemd-journal-remote --listen-http=PORT
--split-mode=none -o DIR/all.journal` (every host in one file, numbered in arrival order; with
`split_mode="host"`: `--split-mode=host -o DIR/`, a file per host), and per host a namespace joined to the collector by its own veth pair
(host 10.N.I.2/24, collector 10.N.I.1/24). Each host has its own journal files (written by
`JournalFiles`, every entry with the host's `_HOSTNAME` and its own boot id) that
`systemd-journal-upload --follow -D HOSTDIR` ships to the collector over that link. Only the
upload traffic crosses the namespaces; tailsse reads the collector's directory from the root
namespace. `close()` ends every process and deletes every namespace (with them, their veths).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from journal_support import JOURNAL_REMOTE, JournalFiles, have_journal_remote
from server import wait_until

JOURNAL_UPLOAD = "/lib/systemd/systemd-journal-upload"
PORT = 19532


def fleet_unavailable() -> str | None:
    """Why a fleet cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root for ip netns"
    if shutil.which("ip") is None:
        return "ip (iproute2) is not installed"
    if not have_journal_remote():
        return f"{JOURNAL_REMOTE} is missing (apt install systemd-journal-remote)"
    if not os.access(JOURNAL_UPLOAD, os.X_OK):
        return f"{JOURNAL_UPLOAD} is missing (apt install systemd-journal-remote)"
    probe = f"tsfprobe{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True)
    if made.returncode != 0:
        return f"ip netns add does not work here: {made.stderr.decode(errors='replace').strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class FleetHost:
    """One host: its namespace, its journal files and its systemd-journal-upload."""

    def __init__(self, fleet: "Fleet", name: str, index: int) -> None:
        self.fleet = fleet
        self.name = name
        self.namespace = f"{fleet.prefix}h{index}"
        self.address = f"10.{fleet.octet}.{index}.2"
        self.collector_address = f"10.{fleet.octet}.{index}.1"
        self.directory = fleet.root / "hosts" / name
        self.journal = JournalFiles(self.directory, boot_id=uuid.uuid4().hex)
        self.upload: subprocess.Popen | None = None
        self.state = fleet.root / "hosts" / f"{name}.state"

    def log(self, texts: list[str], **fields: str) -> None:
        """Appends entries with this host's `_HOSTNAME`, stamped with the current time (each 1 ms
        after the host's entry before it)."""
        self.journal.clock_us = max(self.journal.clock_us, int(time.time() * 1_000_000))
        self.journal.messages(texts, _HOSTNAME=self.name, SYSLOG_IDENTIFIER="fleet-test", **fields)


class Fleet:
    def __init__(self, root: Path, split_mode: str = "none") -> None:
        self.root = Path(root)
        self.split_mode = split_mode
        self.prefix = f"tsf{secrets.token_hex(3)}"
        self.octet = 100 + secrets.randbelow(100)
        self.collector = f"{self.prefix}c"
        self.output = self.root / "remote"
        self.output.mkdir(parents=True)
        self.namespaces: list[str] = []
        self.hosts: dict[str, FleetHost] = {}
        self.processes: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.remote: subprocess.Popen | None = None

    def start_collector(self) -> None:
        """The collector namespace and its systemd-journal-remote, listening on every address."""
        self._add_namespace(self.collector)
        log = self.root / "journal-remote.log"
        self.logs.append(log)
        output = f"{self.output}/all.journal" if self.split_mode == "none" else f"{self.output}/"
        self.remote = self._spawn(self.collector, [JOURNAL_REMOTE, f"--listen-http={PORT}", f"--split-mode={self.split_mode}",
                                                   f"--output={output}"], log)
        wait_until(lambda: self._listening(), 20, "systemd-journal-remote to listen")

    def add_host(self, name: str) -> FleetHost:
        """A host namespace linked to the collector; its journal files exist but are not shipped yet."""
        index = len(self.hosts) + 1
        host = FleetHost(self, name, index)
        self._add_namespace(host.namespace)
        near, far = f"{self.prefix}{index}a", f"{self.prefix}{index}b"
        _ip("link", "add", near, "type", "veth", "peer", "name", far)
        _ip("link", "set", near, "netns", self.collector)
        _ip("link", "set", far, "netns", host.namespace)
        _ip("-n", self.collector, "addr", "add", f"{host.collector_address}/24", "dev", near)
        _ip("-n", self.collector, "link", "set", near, "up")
        _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", far)
        _ip("-n", host.namespace, "link", "set", far, "up")
        self.hosts[name] = host
        return host

    def stop_upload(self, host: FleetHost) -> None:
        """Ends the host's systemd-journal-upload once its state file names the host's last entry
        (so a new upload goes on after it; stopped before, it would ship that entry again)."""
        assert host.upload is not None
        last = host.journal.journalctl("-n", "1", "-o", "export").decode()
        cursor = next(line[len("__CURSOR="):] for line in last.splitlines() if line.startswith("__CURSOR="))
        wait_until(lambda: host.state.exists() and f"LAST_CURSOR={cursor}" in host.state.read_text(), 20,
                   f"{host.name}'s upload to save its state")
        host.upload.terminate()
        host.upload.wait(timeout=10)
        host.upload = None

    def start_upload(self, host: FleetHost) -> None:
        """systemd-journal-upload in the host's namespace, following the host's journal files."""
        log = self.root / f"journal-upload-{host.name}.log"
        self.logs.append(log)
        host.upload = self._spawn(host.namespace, [
            JOURNAL_UPLOAD, f"--url=http://{host.collector_address}:{PORT}", f"--directory={host.directory}",
            "--follow", f"--save-state={host.state}"], log)

    def log_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.logs if p.exists())

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for host in self.hosts.values():
            host.journal.close()
        for namespace in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        self.namespaces.clear()

    def _add_namespace(self, namespace: str) -> None:
        _ip("netns", "add", namespace)
        self.namespaces.append(namespace)
        _ip("-n", namespace, "link", "set", "lo", "up")

    def _spawn(self, namespace: str, command: list[str], log: Path) -> subprocess.Popen:
        with open(log, "wb") as out:
            proc = subprocess.Popen(["ip", "netns", "exec", namespace, *command], stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT)
        self.processes.append(proc)
        return proc

    def _listening(self) -> bool:
        if self.remote is not None and self.remote.poll() is not None:
            raise AssertionError(f"systemd-journal-remote exited with {self.remote.returncode}:\n{self.log_text()}")
        shown = subprocess.run(["ip", "netns", "exec", self.collector, "ss", "-Hltn", f"sport = :{PORT}"],
                               capture_output=True, text=True)
        return bool(shown.stdout.strip())
