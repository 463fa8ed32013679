"""A fleet's journal in the page: the host on each line, and the host filter (issue 15).

The journal directory holds one file per host, as systemd-journal-remote `--split-mode=host` writes
them; a host's file appears while the page is open.
"""

from __future__ import annotations

import time

import pytest

from journal_files import has_journal_directory
from journal_support import JournalFiles, have_journal_remote
from view import rows, wait_for_text

pytestmark = [
    pytest.mark.skipif(not has_journal_directory(), reason="tailsse has no --journal-directory yet"),
    pytest.mark.skipif(not have_journal_remote(), reason="systemd-journal-remote is not installed"),
]


def hosts_and_texts(page) -> list[tuple[str, str]]:
    return [tuple(r) for r in page.evaluate(
        "() => [...document.querySelectorAll('#log .row')].map(r => [r.querySelector('.host')?.textContent ?? '', r.querySelector('.text')?.textContent ?? ''])")]


def wait_for(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return result


def test_hosts_on_each_line_and_the_host_filter(web, page, tmp_path):
    journal = JournalFiles(tmp_path / "remote")
    try:
        journal.messages(["web up", "web busy"], file="remote-10.0.0.2", _HOSTNAME="web1", SYSLOG_IDENTIFIER="nginx")
        journal.messages(["db up"], file="remote-10.0.0.3", _HOSTNAME="db1", SYSLOG_IDENTIFIER="postgres")
        journal.close()
        srv = web({}, extra=["--journal-directory", str(journal.directory)])
        page.goto(srv.url("/#source=journal&tail=all"))
        wait_for_text(page, "db up")
        assert hosts_and_texts(page) == [("web1", "web up"), ("web1", "web busy"), ("db1", "db up")]
        assert page.locator("#log .row .meta").first.text_content() == "nginx:"

        # A third host's file appears while the page is open.
        journal.messages(["cache up"], file="remote-10.0.0.4", _HOSTNAME="cache1", SYSLOG_IDENTIFIER="redis")
        wait_for_text(page, "cache up")
        assert hosts_and_texts(page)[-1] == ("cache1", "cache up")

        # The host filter: opening the menu asks GET /sources again, so it offers the hosts listed
        # now (cache1 too, which appeared after the page loaded); choosing one reopens the stream
        # with journal.host=, which the server applies to the backlog and the live entries.
        page.click("#sources-menu summary")
        host_input = page.locator("#jf-journal-host")
        host_input.wait_for()
        offered = lambda: page.evaluate("() => [...document.querySelectorAll('#jf-journal-hosts option')].map(o => o.value)")
        wait_for(lambda: offered() == ["cache1", "db1", "web1"], "the three hosts offered")
        host_input.fill("web1")
        host_input.press("Enter")
        host_input.dispatch_event("change")
        wait_for(lambda: "journal.host=web1" in page.evaluate("() => location.hash"), "journal.host in the address")
        wait_for(lambda: hosts_and_texts(page) == [("web1", "web up"), ("web1", "web busy")], "only web1's entries")
        journal.messages(["db later"], file="remote-10.0.0.3", _HOSTNAME="db1")
        journal.messages(["web later"], file="remote-10.0.0.2", _HOSTNAME="web1")
        wait_for_text(page, "web later")
        assert hosts_and_texts(page) == [("web1", "web up"), ("web1", "web busy"), ("web1", "web later")]
        assert all(r["source"] == "journal" for r in rows(page))
        assert page.problems == []
    finally:
        journal.close()
