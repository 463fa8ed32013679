"""Degrade, don't die, on the page: a polled file and a journal that cannot be followed say so."""

from __future__ import annotations

from inotify_limits import LIMITS, limited
from server import append
from view import lines, wait_for_text


def test_the_page_shows_a_polled_file_and_a_missing_journal_directory_and_still_streams(web, page, tmp_path, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"first line\n")
    sysctl, reason = LIMITS["watches"]
    srv = web({"app": log}, extra=["--journal-directory", str(tmp_path / "no-journal")], wrapper=limited(sysctl))
    page.goto(srv.url("/"))
    # Two sources and none chosen: the page lists them with what it knows of each.
    items = page.locator("#empty-list")
    items.get_by_text("polling every 250 ms").first.wait_for(timeout=20_000)
    details = items.inner_text()
    assert f"{reason} (max_user_watches); polling every 250 ms" in details, details
    assert "No such file or directory" in details, details
    page.goto(srv.url("/#source=app"))
    wait_for_text(page, "first line")
    append(log, "appended while polled\n")
    wait_for_text(page, "appended while polled")
    assert lines(page) == ["first line", "appended while polled"]
    assert page.problems == []
