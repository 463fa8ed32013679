"""The Debian package on a machine without Swift: `make deb` (lintian: no errors, only the warnings
the README accepts) installs, runs, upgrades and purges in a clean Debian 12 made by debootstrap and
booted in systemd-nspawn — nothing of the build machine's /opt or /usr/local is in there."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from server import append, binary, wait_until
from systemd_container import Container, CurlStream, debian_root, unavailable

ROOT = Path(__file__).resolve().parent.parent
VERSION = re.search(r'static let current = "([^"]+)"', (ROOT / "Sources/tailsse/Version.swift").read_text()).group(1)
ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
CONF = "/etc/tailsse/tailsse.conf"


def ldd(path: str) -> list[str]:
    return subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout.splitlines()


def test_release_binary_has_no_swift_libraries():
    """What ships loads neither the Swift runtime nor Foundation nor ICU: all of it is linked in."""
    lines = ldd(binary())
    assert not [line for line in lines if "not found" in line], lines
    loaded = [line.split()[0] for line in lines]
    assert not [name for name in loaded if re.search(r"swift|Foundation|ICU|icu|dispatch|BlocksRuntime", name)], (
        f"{binary()} links the Swift runtime dynamically (build it with `make release`):\n" + "\n".join(lines))
    assert any(name.startswith("libsystemd.so") for name in loaded), lines


def test_version_is_the_one_in_version_swift():
    out = subprocess.run([binary(), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == VERSION


def make_deb(destination: Path, *args: str) -> tuple[Path, str]:
    result = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "deb", f"BUILT={binary()}", f"DEB_DIR={destination}", *args],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"make deb failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    revision = next((a.split("=", 1)[1] for a in args if a.startswith("DEB_REVISION=")), "1")
    deb = destination / f"tailsse_{VERSION}-{revision}_{ARCH}.deb"
    assert deb.exists(), result.stdout[-2000:]
    return deb, result.stdout + result.stderr


def accepted_lintian_warnings() -> set[str]:
    """The tags the README's install section lists as accepted."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("Lintian's warnings, accepted:", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"^- `([a-z0-9-]+)`", block, re.M))


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    out = tmp_path_factory.mktemp("debs")
    first, output = make_deb(out)
    tags = re.findall(r"^([EW]): tailsse[^:]*: (\S+)", output, re.M)
    assert not [t for level, t in tags if level == "E"], output[-3000:]
    unexpected = {t for level, t in tags if level == "W"} - accepted_lintian_warnings()
    assert not unexpected, f"lintian warnings the README does not accept: {unexpected}\n{output[-3000:]}"
    # The upgrade: the same build with the next Debian revision (lintian ran on the first).
    second, _ = make_deb(out, "DEB_REVISION=2", "LINTIAN=true")
    return first, second


def test_package_contents(debs):
    first, _ = debs
    listing = subprocess.run(["dpkg-deb", "-c", str(first)], capture_output=True, text=True, check=True).stdout
    files = {line.split()[-1].lstrip(".") for line in listing.splitlines() if not line.startswith("d")}
    assert {"/usr/bin/tailsse", "/usr/share/tailsse/static/index.html", "/usr/lib/systemd/system/tailsse.service",
            "/usr/lib/systemd/system/tailsse.socket", CONF, "/usr/share/man/man8/tailsse.8.gz",
            "/usr/share/doc/tailsse/copyright", "/usr/share/doc/tailsse/changelog.Debian.gz"} <= files, files
    info = subprocess.run(["dpkg-deb", "-f", str(first), "Version", "Depends"], capture_output=True, text=True, check=True).stdout
    assert f"Version: {VERSION}-1" in info
    depends = info.split("Depends:", 1)[1]
    assert "libsystemd0" in depends and "libc6" in depends and "swift" not in depends.lower(), info
    conffiles = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(first)], capture_output=True, check=True).stdout
    assert CONF.encode() in conffiles
    unit = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(first)], capture_output=True, check=True).stdout
    assert b"ExecStart=/usr/bin/tailsse --config /etc/tailsse/tailsse.conf" in unit
    # The man page is the --help text and the README's tables, and man reads it without warnings.
    extracted = subprocess.run(f"dpkg-deb --fsys-tarfile {first} | tar -xOf - ./usr/share/man/man8/tailsse.8.gz | gunzip",
                               shell=True, capture_output=True, text=True, check=True).stdout
    for needle in ("--shared-buffer-bytes", "GET /healthz", "priority=P", "/etc/tailsse/tailsse.conf", "Show the version"):
        assert needle in extracted.replace("\\-", "-"), needle
    rendered = subprocess.run(["man", "--warnings", "-l", "-"], input=extracted, capture_output=True, text=True,
                              env={"MANWIDTH": "80", "LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin", "MAN_DISABLE_SECCOMP": "1"})
    # Like lintian, typography ("cannot adjust line": a long word at 80 columns) is no error.
    problems = [line for line in rendered.stderr.splitlines() if line.strip() and not re.search(r"cannot adjust|can't break", line)]
    assert rendered.returncode == 0 and not problems, rendered.stderr


def installed_state(container: Container) -> dict[str, str]:
    return container.show("tailsse.service", "ActiveState", "MainPID", "NRestarts")


@pytest.mark.skipif(unavailable() is not None or shutil.which("debootstrap") is None,
                    reason=unavailable() or "debootstrap is not installed (apt-get install debootstrap)")
def test_install_upgrade_purge_on_clean_debian(debs, tmp_path):
    first, second = debs
    root = debian_root()
    logs = tmp_path / "logs"
    logs.mkdir()
    logs.chmod(0o755)
    (logs / "app.log").write_text("app-0\n")
    (logs / "app.log").chmod(0o644)
    container = Container(binds=[(str(first.parent), "/srv/debs", False), (str(logs), "/var/log/tailsse-test", False)],
                          kernel_args=[], log=tmp_path / "nspawn.log", directory=str(root))
    streams: list[CurlStream] = []
    try:
        container.wait_booted()
        # A machine without Swift: nothing from the build machine's /opt or /usr/local.
        assert container.sh("command -v swift || true") == ""
        assert container.sh("ls -A /opt /usr/local/bin /usr/local/lib") == "/opt:\n\n/usr/local/bin:\n\n/usr/local/lib:\n"
        assert container.sh("find / -xdev \\( -name 'libswift*' -o -name 'libFoundation*' -o -name '*FoundationICU*' \\) -print") == ""

        container.sh(f"apt-get install -y -q /srv/debs/{first.name}")
        assert container.sh("dpkg-query -W -f '${Status} ${Version}' tailsse") == f"install ok installed {VERSION}-1"
        assert container.sh("tailsse --version").strip() == VERSION
        assert container.sh("ldd /usr/bin/tailsse | grep -ci swift || true").strip() == "0"
        assert container.sh("systemctl is-enabled tailsse.socket").strip() == "enabled"
        assert container.show("tailsse.socket", "ActiveState")["ActiveState"] == "active"
        assert installed_state(container)["ActiveState"] == "inactive", "started before any connection"

        # The administrator's configuration (the conffile, edited).
        edited = "# edited by the administrator\nfile = app=/var/log/tailsse-test/app.log\njournal = yes\nheartbeat = 1\n"
        container.sh(f"cat > {CONF} <<'EOF'\n{edited}EOF")

        app = CurlStream(container, "/sources/app?tail=1")
        streams.append(app)
        app.wait_for(b'"text":"app-0"')
        append(logs / "app.log", "app-1\n")
        app.wait_for(b'"text":"app-1"')
        journal = CurlStream(container, "/journal?tail=0")
        streams.append(journal)
        journal.wait_for(b"retry:")
        container.sh("echo tailsse-package-journal-1 | systemd-cat -t tailsse-test")
        journal.wait_for(b"tailsse-package-journal-1")
        before = installed_state(container)
        assert before["ActiveState"] == "active", before

        # Upgrade: the edited conffile stays, the running service restarts with the new package.
        container.sh(f"apt-get install -y -q /srv/debs/{second.name}")
        assert container.sh("dpkg-query -W -f '${Version}' tailsse") == f"{VERSION}-2"
        assert container.sh(f"cat {CONF}") == edited
        wait_until(lambda: installed_state(container)["ActiveState"] == "active"
                   and installed_state(container)["MainPID"] not in ("0", before["MainPID"]), what="tailsse restarted by the upgrade")
        assert app.finish() == 0, "the old process ended its stream cleanly"
        again = CurlStream(container, "/sources/app?tail=0")
        streams.append(again)
        again.wait_for(b"retry:")
        append(logs / "app.log", "app-2\n")
        again.wait_for(b'"text":"app-2"')
        assert container.sh("systemctl is-enabled tailsse.socket").strip() == "enabled"

        files = container.sh("dpkg-query -L tailsse").split()
        assert "/usr/share/man/man8/tailsse.8.gz" in files
        for stream in streams:
            stream.close()

        # Remove: stopped, the socket no longer listens, the configuration stays (a conffile).
        container.sh("apt-get remove -y -q tailsse")
        assert container.show("tailsse.socket", "ActiveState")["ActiveState"] in ("inactive", "")
        assert installed_state(container)["ActiveState"] == "inactive"
        assert container.sh("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8111/healthz || true") == "000"
        assert container.sh("test ! -e /usr/bin/tailsse && cat " + CONF) == edited
        assert container.sh("systemctl is-enabled tailsse.socket 2>&1 || true").strip() != "enabled"

        # Purge: nothing of the package is left, not even the enablement or the configuration.
        container.sh("apt-get purge -y -q tailsse")
        assert container.sh("dpkg -s tailsse >/dev/null 2>&1 && echo installed || echo gone") == "gone\n"
        own = [f for f in files if "tailsse" in f]
        left = container.sh("for f in " + " ".join(own) + "; do test -e $f && echo $f; done; "
                            "ls /etc/systemd/system/*/tailsse* /var/lib/systemd/deb-systemd-helper-enabled/*/tailsse* "
                            "/var/lib/systemd/deb-systemd-helper-enabled/tailsse* 2>/dev/null; true")
        assert left == "", f"left after purge:\n{left}"
        assert container.sh("systemctl is-enabled tailsse.socket 2>&1 || true").strip() != "enabled"
    finally:
        for stream in streams:
            stream.close()
        container.stop()
