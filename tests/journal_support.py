"""Real journals for tests: files written by systemd-journal-remote, and a standalone journald.

`JournalFiles` keeps one `systemd-journal-remote -o DIR/NAME.journal -` process per file and feeds
it entries in the journal export format, so the files grow while tailsse follows them.
`StandaloneJournald` runs a real systemd-journald in a private mount namespace (see
notes/platform.md) for `logger --journald` and `systemd-cat` to log into.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import time
from pathlib import Path

from server import wait_until

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
JOURNALD = "/lib/systemd/systemd-journald"
BOOT_ID = "0f0e0d0c0b0a09080706050403020100"


def have_journal_remote() -> bool:
    return os.access(JOURNAL_REMOTE, os.X_OK)


def export_entry(fields: dict[str, str | bytes] | list[tuple[str, str | bytes]], realtime_us: int,
                 monotonic_us: int, boot_id: str = BOOT_ID) -> bytes:
    """One entry in the journal export format; values with LF or control bytes use the binary form."""
    items = list(fields.items()) if isinstance(fields, dict) else list(fields)
    out = bytearray()
    out += b"__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=%s\n" % (realtime_us, monotonic_us, boot_id.encode())
    for name, value in items:
        raw = value.encode() if isinstance(value, str) else bytes(value)
        if any(b < 0x20 and b != 0x09 for b in raw) or b"\xff" in raw:
            out += name.encode() + b"\n" + struct.pack("<Q", len(raw)) + raw + b"\n"
        else:
            out += name.encode() + b"=" + raw + b"\n"
    out += b"\n"
    return bytes(out)


class JournalFiles:
    """Journal files in one directory, each fed live by its own systemd-journal-remote."""

    def __init__(self, directory: Path, boot_id: str = BOOT_ID) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.boot_id = boot_id
        self.writers: dict[str, subprocess.Popen] = {}
        self.clock_us = int(time.time() * 1_000_000) - 3_600_000_000
        self.monotonic_us = 1_000_000
        self.count = 0

    def write(self, entries: list[dict | list], file: str = "x") -> None:
        """Appends entries (dicts of fields; MESSAGE etc.) to DIR/FILE.journal."""
        proc = self.writers.get(file)
        if proc is None:
            proc = subprocess.Popen([JOURNAL_REMOTE, "-o", str(self.directory / f"{file}.journal"), "-"],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.writers[file] = proc
        data = bytearray()
        for fields in entries:
            self.clock_us += 1000
            self.monotonic_us += 1000
            self.count += 1
            data += export_entry(fields, self.clock_us, self.monotonic_us, self.boot_id)
        proc.stdin.write(bytes(data))
        proc.stdin.flush()

    def messages(self, texts: list[str], file: str = "x", **fields) -> None:
        self.write([{"MESSAGE": t, **fields} for t in texts], file)

    def close(self, file: str | None = None) -> None:
        """Ends the writers (all, or one file's): their files are complete after this."""
        for name in [file] if file else list(self.writers):
            proc = self.writers.pop(name, None)
            if proc is None:
                continue
            proc.stdin.close()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def journalctl(self, *args: str) -> bytes:
        return subprocess.run(["journalctl", "--no-pager", "-D", str(self.directory), *args],
                              check=True, capture_output=True).stdout


SETUP_SCRIPT = r"""#!/bin/bash
# Runs in a private mount namespace: a private /run and journal directory, a volatile journald.
set -euo pipefail
state="$1"; shift
export LIBMOUNT_UTAB="$state/utab"
mkdir -p "$state/run" "$state/varlog"
mount --bind "$state/run" /run
mount --bind "$state/varlog" /var/log/journal
cat > "$state/journald.conf" <<'CONF'
[Journal]
Storage=volatile
ReadKMsg=no
RateLimitIntervalSec=0
RateLimitBurst=0
ForwardToSyslog=no
ForwardToWall=no
CONF
mount --bind "$state/journald.conf" /etc/systemd/journald.conf
mkdir -p /run/systemd/journal
/lib/systemd/systemd-journald </dev/null >"$state/journald.log" 2>&1 &
echo $! > "$state/journald.pid"
for _ in $(seq 1 200); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
[ -S /run/systemd/journal/socket ] || { echo "journald did not create its socket" >&2; exit 1; }
exec "$@"
"""


class StandaloneJournald:
    """A private mount namespace with its own journald; `wrapper` runs a command inside it.

    The command (tailsse) is exec'd by the setup script, so its pid is the namespace's handle:
    `run_inside(pid, ...)` runs loggers in the same namespace with nsenter.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state = Path(state_dir)
        self.state.mkdir(parents=True, exist_ok=True)
        self.script = self.state / "setup.sh"
        self.script.write_text(SETUP_SCRIPT)
        self.script.chmod(0o755)

    @staticmethod
    def unavailable() -> str | None:
        if os.geteuid() != 0:
            return "needs root for a private mount namespace"
        for tool in ("unshare", "nsenter", "logger", "systemd-cat"):
            if shutil.which(tool) is None:
                return f"{tool} is not installed"
        if not os.access(JOURNALD, os.X_OK):
            return f"{JOURNALD} is missing"
        probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
        if probe.returncode != 0:
            return f"unshare -m does not work here: {probe.stderr.decode(errors='replace').strip()}"
        return None

    @property
    def wrapper(self) -> list[str]:
        return ["unshare", "-m", "--propagation", "private", str(self.script), str(self.state)]

    def run_inside(self, pid: int, *command: str, input: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", "-t", str(pid), "-m", *command], input=input, capture_output=True,
                              check=True, timeout=30)

    def stop(self) -> None:
        pid_file = self.state / "journald.pid"
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
            wait_until(lambda: not Path(f"/proc/{pid}").exists() or _is_zombie(pid), 10, "journald to exit")
        except ProcessLookupError:
            pass


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True
