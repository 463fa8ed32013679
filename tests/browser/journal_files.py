"""Real journal files for the browser tests, written by systemd-journal-remote from the export format."""

from __future__ import annotations

import subprocess
import time

from server import binary


def has_journal_directory() -> bool:
    """Whether the tailsse under test has `--journal-directory`."""
    try:
        out = subprocess.run([binary(), "--help"], capture_output=True, text=True, timeout=20)
    except OSError:
        return False
    return "--journal-directory" in out.stdout + out.stderr


def write_journal(directory, entries) -> None:
    """Writes `(priority, message)` entries of demo.service into DIRECTORY/x.journal."""
    now = int(time.time() * 1e6)
    export = []
    for i, (priority, message) in enumerate(entries):
        export += [f"__REALTIME_TIMESTAMP={now + i}", f"__MONOTONIC_TIMESTAMP={1000 + i}",
                   "_BOOT_ID=0123456789abcdef0123456789abcdef", f"MESSAGE={message}", f"PRIORITY={priority}",
                   "_SYSTEMD_UNIT=demo.service", "SYSLOG_IDENTIFIER=demo", "_PID=42", "_HOSTNAME=host1", ""]
    subprocess.run(["/lib/systemd/systemd-journal-remote", "-o", str(directory / "x.journal"), "-"],
                   input=("\n".join(export) + "\n").encode(), check=True, capture_output=True, timeout=60)
