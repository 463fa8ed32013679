"""`make install` / `make uninstall` with PREFIX and DESTDIR: what goes where, the unit pointing at
the installed binary and configuration, and a configuration that is never overwritten or removed."""

from __future__ import annotations

import gzip
import stat
import subprocess
from pathlib import Path

from server import binary

ROOT = Path(__file__).resolve().parent.parent


def make(target: str, destdir: Path, *args: str) -> str:
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), target, f"DESTDIR={destdir}", f"BUILT={binary()}", *args],
                          check=True, capture_output=True, text=True).stdout


def test_install_and_uninstall_with_prefix(tmp_path):
    dest = tmp_path / "stage"
    make("install", dest, "PREFIX=/usr")
    exe = dest / "usr/bin/tailsse"
    assert exe.read_bytes() == Path(binary()).read_bytes()
    assert stat.S_IMODE(exe.stat().st_mode) == 0o755
    assert sorted(p.name for p in (dest / "usr/share/tailsse/static").iterdir()) == sorted(p.name for p in (ROOT / "static").iterdir())
    service = (dest / "usr/lib/systemd/system/tailsse.service").read_text()
    assert "ExecStart=/usr/bin/tailsse --config /etc/tailsse/tailsse.conf\n" in service
    assert (dest / "usr/lib/systemd/system/tailsse.socket").read_text() == (ROOT / "systemd/tailsse.socket").read_text()
    conf = dest / "etc/tailsse/tailsse.conf"
    assert conf.read_text() == (ROOT / "systemd/tailsse.conf").read_text()
    manual = gzip.decompress((dest / "usr/share/man/man8/tailsse.8.gz").read_bytes()).decode()
    assert manual.startswith(".TH TAILSSE 8 ") and "/usr/bin/tailsse" in manual

    conf.write_text("file = mine=/var/log/mine.log\n")
    assert "keeping the existing" in make("install", dest, "PREFIX=/usr")
    assert conf.read_text() == "file = mine=/var/log/mine.log\n"

    make("uninstall", dest, "PREFIX=/usr")
    assert not exe.exists()
    assert not (dest / "usr/share/man/man8/tailsse.8.gz").exists()
    assert not (dest / "usr/share/tailsse").exists()
    assert not (dest / "usr/lib/systemd/system/tailsse.service").exists()
    assert not (dest / "usr/lib/systemd/system/tailsse.socket").exists()
    assert conf.read_text() == "file = mine=/var/log/mine.log\n", "uninstall must keep the configuration"


def test_default_prefix_is_usr_local(tmp_path):
    dest = tmp_path / "stage"
    make("install", dest)
    assert (dest / "usr/local/bin/tailsse").exists()
    assert "ExecStart=/usr/local/bin/tailsse " in (dest / "usr/local/lib/systemd/system/tailsse.service").read_text()
