"""Journal entries in the page: priorities in colour, server-side filters from the UI.

Runs once `tailsse --help` lists `--journal-directory`; the journal files are real ones, written by
systemd-journal-remote from the export format.
"""

from __future__ import annotations

import pytest

from journal_files import has_journal_directory, write_journal
from view import rows, wait_for_rows, wait_for_text



pytestmark = pytest.mark.skipif(not has_journal_directory(), reason="tailsse has no --journal-directory yet")

ENTRIES = [(6, "service started"), (3, "disk almost full"), (4, "slow response"), (0, "kernel panic, not really"),
           (7, "debug detail")]


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
    wait_for_text(page, "a file line")
    assert [r["source"] for r in rows(page)].count("app") == 1
    assert page.problems == []
