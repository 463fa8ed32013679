"""Journal entries in the page: priorities in colour, server-side filters from the UI.

Runs once `tailsse --help` lists `--journal-directory`; the journal files are real ones, written by
systemd-journal-remote from the export format.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from server import binary
from view import rows, wait_for_rows, wait_for_text


def has_journal_directory() -> bool:
    try:
        out = subprocess.run([binary(), "--help"], capture_output=True, text=True, timeout=20)
    except OSError:
        return False
    return "--journal-directory" in out.stdout + out.stderr


pytestmark = pytest.mark.skipif(not has_journal_directory(), reason="tailsse has no --journal-directory yet")

ENTRIES = [(6, "service started"), (3, "disk almost full"), (4, "slow response"), (0, "kernel panic, not really"),
           (7, "debug detail")]


def write_journal(directory, entries) -> None:
    now = int(time.time() * 1e6)
    export = []
    for i, (priority, message) in enumerate(entries):
        export += [f"__REALTIME_TIMESTAMP={now + i}", f"__MONOTONIC_TIMESTAMP={1000 + i}",
                   "_BOOT_ID=0123456789abcdef0123456789abcdef", f"MESSAGE={message}", f"PRIORITY={priority}",
                   "_SYSTEMD_UNIT=demo.service", "SYSLOG_IDENTIFIER=demo", "_PID=42", "_HOSTNAME=host1", ""]
    subprocess.run(["/lib/systemd/systemd-journal-remote", "-o", str(directory / "x.journal"), "-"],
                   input="\n".join(export).encode(), check=True, capture_output=True, timeout=60)


def test_journal_priorities_in_colour_and_server_side_filters(web, page, tmp_path, logdir):
    journal = tmp_path / "journal"
    journal.mkdir()
    write_journal(journal, ENTRIES)
    app = logdir / "app.log"
    app.write_bytes(b"a file line\n")
    srv = web({"app": app}, extra=["--journal-directory", str(journal)])
    page.goto(srv.url("/#source=journal&source=app"))
    wait_for_rows(page, len(ENTRIES) + 1)
    for priority, message in ENTRIES:
        wait_for_text(page, message)
    colours = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#log .row[data-priority]')]
        .map(r => [r.dataset.priority, [getComputedStyle(r.querySelector('.text')).color, r.querySelector('.meta')?.textContent]]))""")
    plain = page.evaluate("() => getComputedStyle([...document.querySelectorAll('#log .row')].find(r => !r.dataset.priority).querySelector('.text')).color")
    assert set(colours) == {str(p) for p, _ in ENTRIES}
    assert colours["3"][0] != plain and colours["4"][0] != plain and colours["0"][0] != plain
    assert colours["3"][0] != colours["4"][0]
    assert colours["6"][0] == plain
    assert "demo[42]" in colours["3"][1]
    # The priority filter in the sources menu reopens the stream with journal.priority=err.
    page.click("#sources-menu summary")
    page.select_option("#jf-journal-priority", "err")
    page.wait_for_function("() => location.hash.includes('journal.priority=err')")
    page.wait_for_function("""() => { const t = [...document.querySelectorAll('#log .row[data-priority]')].map(r => r.dataset.priority);
        return t.length === 2 && t.includes('3') && t.includes('0') }""")
    assert all(int(r) <= 3 for r in page.evaluate("() => [...document.querySelectorAll('#log .row[data-priority]')].map(r => r.dataset.priority)"))
    assert any(r["source"] == "app" for r in rows(page))
    assert page.problems == []
