"""The viewer page in a real browser (Debian's chromium through Playwright) against the real server."""

from __future__ import annotations

import os
import threading
from pathlib import Path
import time

from conftest import artifact
from http_client import metric
from journal_files import has_journal_directory, write_journal
from proxy_support import nginx  # noqa: F401  (the fixture)
from server import append, wait_until
from view import heap, lines, rows, scroll_to_the_start, wait_for_rows, wait_for_status, wait_for_text


def test_a_line_appended_to_the_file_appears_and_a_single_source_opens_by_itself(web, page, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"first line\n")
    srv = web({"app": log})
    page.goto(srv.url("/"))
    wait_for_text(page, "first line")
    assert "source=app" in page.url
    append(log, "appended while watching\n")
    wait_for_text(page, "appended while watching")
    assert lines(page) == ["first line", "appended while watching"]
    assert [r["source"] for r in rows(page)] == ["app", "app"]
    wait_for_status(page, "live")
    assert page.problems == []


def test_kill_and_restart_while_writing_two_sources_on_one_stream_exact_lines(web, page, logdir):
    a, b = logdir / "a.log", logdir / "b.log"
    a.write_bytes(b"")
    b.write_bytes(b"")
    srv = web({"a": a, "b": b})
    srv.pin_port()
    page.goto(srv.url("/#source=a&source=b"))
    wait_for_status(page, "live")
    wait_until(lambda: metric(srv.port, "tailsse_streams") == 1, 10, "one multiplexed stream for both sources")

    written = {"a": [], "b": []}
    done = threading.Event()

    def writer():
        for i in range(1200):
            for name, path in (("a", a), ("b", b)):
                text = f"{name}-{i:05d}"
                append(path, text + "\n")
                written[name].append(text)
            time.sleep(0.003)
        done.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    kills = 0
    while not done.is_set() and kills < 3:
        wait_for_rows(page, 150 * (kills + 1), timeout=30)
        srv.kill()                     # SIGKILL: no goodbye, events cut mid-write
        kills += 1
        wait_for_status(page, "reconnecting", timeout=10)
        srv.start()
    thread.join(60)
    assert done.is_set()
    total = sum(len(v) for v in written.values())
    wait_for_rows(page, total, timeout=60)
    wait_for_status(page, "live")
    shown = rows(page)
    assert [r for r in shown if r["marker"]] == [], "no reset or other marker"
    assert len(shown) == total, f"{len(shown)} rows for {total} lines"
    for name in ("a", "b"):
        assert lines(page, name) == written[name]
    assert kills >= 2
    print(f"{total} lines over {kills + 1} server runs; last id {page.evaluate('window.tailsse.lastEventId')}")


def test_a_glob_source_shows_each_lines_file_and_resumes_files_created_while_tailsse_was_down(web, page, logdir):
    (logdir / "api.log").write_bytes(b"api-1\n")
    srv = web({"app": logdir / "*.log"})
    srv.pin_port()
    page.goto(srv.url("/#source=app"))
    wait_for_text(page, "api-1")
    (logdir / "worker.log").write_bytes(b"worker-1\n")
    wait_for_text(page, "worker-1")
    append(logdir / "api.log", "api-2\n")
    wait_for_text(page, "api-2")
    srv.kill()
    wait_for_status(page, "reconnecting", timeout=10)
    append(logdir / "api.log", "api-3\n")
    (logdir / "cron.log").write_bytes(b"cron-1\ncron-2\n")
    srv.start()
    wait_for_text(page, "cron-2")
    wait_for_text(page, "api-3")
    wait_for_status(page, "live")
    shown = rows(page)
    assert [r for r in shown if r["marker"]] == []
    by_file = {}
    for r in shown:
        assert r["source"] == "app"
        by_file.setdefault(r["file"], []).append(r["text"])
    assert by_file == {"api.log": ["api-1", "api-2", "api-3"], "worker.log": ["worker-1"], "cron.log": ["cron-1", "cron-2"]}
    # The kill cuts the stream's chunked body: the browser reports that, and nothing else.
    assert [p for p in page.problems if "ERR_INCOMPLETE_CHUNKED_ENCODING" not in p] == []


def test_scrolling_to_the_top_loads_earlier_lines_with_no_gap_or_duplicate_at_the_seam(web, page, logdir):
    log = logdir / "app.log"
    # Two generations: the earlier lines come from the rotated file too; one line is long.
    first = [f"old-{i:05d}" for i in range(700)]
    first[350] = "long " + "z" * 6000
    (logdir / "app.log.1").write_text("")
    log.write_text("")
    srv = web({"app": log}, max_line_bytes=1024)
    page.goto(srv.url("/#source=app"))
    wait_for_status(page, "live")
    append(log, "".join(line + "\n" for line in first))
    wait_for_text(page, first[-1])
    os.rename(log, logdir / "app.log.1")
    log.write_text("")
    second = [f"new-{i:05d}" for i in range(400)]
    append(log, "".join(line + "\n" for line in second))
    wait_for_text(page, second[-1])
    page.click("#clear-button")
    append(log, "live-1\n")
    wait_for_text(page, "live-1")
    assert lines(page) == ["live-1"]
    everything = first + second + ["live-1"]
    # Scroll to the top as a user does: each time, the lines before the first row come in above.
    scroll_to_the_start(page, rounds=5)
    assert page.is_hidden("#earlier-button"), "the start of the log was reached"
    # The long line is shown folded: compare each row's whole text.
    shown = [e["text"] for e in page.evaluate("window.tailsse.snapshot()") if e["kind"] == "line"]
    assert shown == everything
    assert page.problems == []


def test_a_view_of_several_sources_and_a_glob_loads_earlier_lines_of_each_without_gap_or_duplicate(web, page, logdir):
    """GET /events/lines by the first row's composite id: each source's (and each file's) earlier
    lines come in above, as far back as the files go (the rotated one too)."""
    log = logdir / "app.log"
    web_dir = logdir / "web"
    web_dir.mkdir()
    expected = {
        ("app", None): [f"app-{i:04d}" for i in range(900)],
        ("web", "a.log"): [f"a-{i:04d}" for i in range(500)],
        ("web", "b.log"): [f"b-{i:04d}" for i in range(300)],
    }
    log.write_text("".join(line + "\n" for line in expected[("app", None)][:400]))
    os.rename(log, logdir / "app.log.1")
    log.write_text("".join(line + "\n" for line in expected[("app", None)][400:]))
    (web_dir / "a.log").write_text("".join(line + "\n" for line in expected[("web", "a.log")]))
    (web_dir / "b.log").write_text("".join(line + "\n" for line in expected[("web", "b.log")]))
    srv = web({"app": log, "web": web_dir / "*.log"})
    page.goto(srv.url("/#source=app&source=web&tail=5"))
    wait_for_status(page, "live")
    append(log, "app-live\n")
    append(web_dir / "b.log", "b-live\n")
    wait_for_text(page, "app-live")
    wait_for_text(page, "b-live")
    expected[("app", None)].append("app-live")
    expected[("web", "b.log")].append("b-live")
    scroll_to_the_start(page, rounds=10)
    assert page.is_hidden("#earlier-button"), "the start of every source was reached"
    shown = {}
    for entry in page.evaluate("window.tailsse.snapshot()"):
        if entry["kind"] == "line":
            shown.setdefault((entry["source"], entry["file"]), []).append(entry["text"])
    assert shown == expected
    # A glob's line opens in context in its own file.
    page.fill("#filter-input", "a-0250")
    page.click("#log .row:not([hidden]) >> text=a-0250")
    page.wait_for_function("() => document.querySelectorAll('#context-log .row').length > 0")
    context = page.eval_on_selector_all("#context-log .row", "rows => rows.map(r => r.textContent)")
    assert context == [f"a-{i:04d}" for i in range(230, 271)]
    assert page.text_content("#context-log .context-target") == "a-0250"
    assert page.problems == []


def test_earlier_lines_past_the_cap_drop_the_newest_until_jump_to_live(web, page, logdir):
    log = logdir / "app.log"
    log.write_text("".join(f"line-{i:05d}\n" for i in range(1000)))
    srv = web({"app": log})
    page.goto(srv.url("/#source=app&lines=300"))
    wait_for_text(page, "line-00999")
    assert len(rows(page)) == 100
    page.click("#earlier-button")
    page.wait_for_function("() => document.querySelectorAll('#log .row').length === 300")
    shown = lines(page)
    assert shown == [f"line-{i:05d}" for i in range(400, 700)], (shown[0], shown[-1])
    received = page.evaluate("window.tailsse.received")
    append(log, "after-hold\n")
    assert not page.is_hidden("#jump-button")
    # The line arrives, and waits: the rows shown stay those loaded.
    page.wait_for_function("n => window.tailsse.received > n", arg=received)
    assert "after-hold" not in lines(page) and len(rows(page)) == 300
    page.click("#jump-button")
    wait_for_text(page, "after-hold")
    assert lines(page)[-1] == "after-hold"
    assert page.problems == []


def test_a_line_clicked_while_filtering_opens_in_context_and_escape_returns(web, page, logdir):
    log = logdir / "app.log"
    text = [f"line-{i:04d}" + (" needle" if i % 37 == 5 else "") for i in range(300)]
    log.write_text("".join(line + "\n" for line in text))
    srv = web({"app": log})
    page.goto(srv.url("/#source=app&tail=all&q=needle"))
    wait_for_text(page, text[-1])
    page.wait_for_function("() => document.querySelectorAll('#log .row:not([hidden])').length === 8")
    target = text.index("line-0153 needle")
    page.click("#log .row:not([hidden]) >> text=line-0153 needle")
    page.wait_for_function("() => document.querySelectorAll('#context-log .row').length > 0")
    shown = page.eval_on_selector_all("#context-log .row", "rows => rows.map(r => r.textContent)")
    assert shown == text[target - 20:target + 21]
    marked = page.eval_on_selector_all("#context-log .row.context-target", "rows => rows.map(r => r.textContent)")
    assert marked == ["line-0153 needle"]
    assert page.eval_on_selector_all("#context-log mark", "m => m.map(x => x.textContent)") == ["needle"]
    page.keyboard.press("Escape")
    page.wait_for_selector("#context", state="hidden")
    append(log, "line-after needle\n")
    wait_for_text(page, "line-after needle")
    assert page.problems == []


def test_search_the_file_finds_the_matches_before_the_rows_shown_and_opens_one_in_context(web, page, logdir):
    log = logdir / "app.log"
    text = [f"line-{i:04d}" + (" Needle.x" if i % 97 == 3 else "") for i in range(3000)]
    log.write_text("".join(line + "\n" for line in text))
    srv = web({"app": log})
    page.goto(srv.url("/#source=app&q=needle.x"))
    wait_for_text(page, text[-1])
    assert len(rows(page)) == 100
    page.click("#search-file-button")
    page.wait_for_function("() => document.querySelectorAll('#context-log .search-hit').length > 0")
    hits = page.eval_on_selector_all("#context-log .search-hit", "rows => rows.map(r => r.textContent)")
    # The substring filter is case-insensitive and literal ("." is a dot): grep -iF on the file.
    assert hits == [t for t in text[:2900] if "needle.x" in t.lower()]
    assert "back to the start of the log" in page.text_content("#context-log .context-note")
    page.click("#context-log .search-hit >> text=line-1070 Needle.x")
    page.wait_for_function("() => document.querySelectorAll('#context-log .context-target').length === 1")
    assert page.text_content("#context-log .context-target") == "line-1070 Needle.x"
    page.keyboard.press("Escape")
    page.wait_for_selector("#context", state="hidden")
    assert page.problems == []


def test_search_in_a_view_of_a_file_and_a_glob_finds_each_ones_matches_and_opens_them_in_their_file(web, page, logdir):
    log = logdir / "app.log"
    web_dir = logdir / "web"
    web_dir.mkdir()
    files = {("app", None): log, ("web", "a.log"): web_dir / "a.log", ("web", "b.log"): web_dir / "b.log"}
    texts = {}
    for (source, file), path in files.items():
        texts[(source, file)] = [f"{file or source}-{i:04d}" + (" Needle" if i % 41 == 7 else "") for i in range(600)]
        path.write_text("".join(line + "\n" for line in texts[(source, file)]))
    srv = web({"app": log, "web": web_dir / "*.log"})
    page.goto(srv.url("/#source=app&source=web&q=needle"))
    wait_for_text(page, "b.log-0599")
    page.click("#search-file-button")
    page.wait_for_function("() => document.querySelectorAll('#context-log .search-hit').length > 0")
    hits = page.eval_on_selector_all("#context-log .search-hit .text", "rows => rows.map(r => r.textContent)")
    # tail=100 of each shown: each one's matches before its first row, source by source.
    assert hits == [t for key in files for t in texts[key][:500] if "Needle" in t]
    page.click("#context-log .search-hit >> text=a.log-0335 Needle")
    page.wait_for_function("() => document.querySelectorAll('#context-log .context-target').length === 1")
    assert page.text_content("#context-log .context-target") == "a.log-0335 Needle"
    context = page.eval_on_selector_all("#context-log .row", "rows => rows.map(r => r.textContent)")
    assert context == texts[("web", "a.log")][315:356]
    assert page.problems == []


def test_twelve_tabs_on_twelve_sources_share_one_stream_over_http1_and_resume_exactly(web, page, logdir):
    """A browser opens at most six HTTP/1.1 connections per origin: with one EventSource per tab
    the seventh tab would never load. The tabs share one stream through a SharedWorker."""
    names = [f"s{i:02d}" for i in range(12)]
    for name in names:
        (logdir / f"{name}.log").write_text(f"{name}-0\n")
    srv = web({name: logdir / f"{name}.log" for name in names})
    srv.pin_port()
    tabs = [page] + [page.context.new_page() for _ in names[1:]]
    for tab, name in zip(tabs, names):
        tab.goto(srv.url(f"/#source={name}"))
    for tab, name in zip(tabs, names):
        wait_for_text(tab, f"{name}-0")
    wait_until(lambda: metric(srv.port, "tailsse_streams") == 1, 20, "one stream for the twelve tabs")
    for name in names:
        append(logdir / f"{name}.log", f"{name}-1\n")
    for tab, name in zip(tabs, names):
        wait_for_text(tab, f"{name}-1")
    srv.kill()
    for name in names:
        append(logdir / f"{name}.log", f"{name}-2\n")
    srv.start()
    for name in names:
        append(logdir / f"{name}.log", f"{name}-3\n")
    for tab, name in zip(tabs, names):
        wait_for_text(tab, f"{name}-3", timeout=30)
        wait_for_status(tab, "live")
        assert lines(tab) == [f"{name}-{n}" for n in range(4)], name
        assert [r for r in rows(tab) if r["marker"]] == []
    assert page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol") == "http/1.1"
    for tab in tabs[1:]:
        tab.close()


def test_pause_loses_nothing_filter_highlights_and_scrolling_up_stops_following(web, page, logdir):
    log = logdir / "app.log"
    log.write_bytes("".join(f"line-{i:03d} {'alpha' if i % 3 == 0 else 'beta'}\n" for i in range(150)).encode())
    srv = web({"app": log})
    page.goto(srv.url("/#source=app&tail=all"))
    wait_for_rows(page, 150)

    # Pause from the keyboard: lines keep arriving but are not shown until resume.
    page.locator("#log").focus()
    page.keyboard.press("p")
    assert page.evaluate("window.tailsse.paused") is True
    append(log, "".join(f"paused-{i:02d}\n" for i in range(40)))
    page.wait_for_function("() => window.tailsse.queued === 40")
    assert len(rows(page)) == 150
    page.keyboard.press("p")
    wait_for_rows(page, 190)
    assert lines(page)[150:] == [f"paused-{i:02d}" for i in range(40)]

    # Filter (regex) from the keyboard: non-matching lines hidden, matches highlighted.
    page.keyboard.press("/")
    page.keyboard.type("/line-0(1|2)\\d alpha/")
    expected = [f"line-{i:03d} alpha" for i in range(10, 30) if i % 3 == 0]
    page.wait_for_function("n => document.querySelectorAll('#log .row:not([hidden])').length === n", arg=len(expected))
    visible = [r["text"] for r in rows(page) if not r["hidden"]]
    assert visible == expected
    marks = page.evaluate("() => [...document.querySelectorAll('#log .row:not([hidden]) mark')].map(m => m.textContent)")
    assert marks == visible
    assert "q=" in page.url, "the filter is in the URL"
    # Substring, case-insensitive; a new line that matches shows, one that does not stays hidden.
    page.fill("#filter-input", "PAUSED-3")
    page.wait_for_function("() => document.querySelectorAll('#log .row:not([hidden])').length === 10")
    append(log, "paused-3x new\nnot this one\n")
    wait_for_rows(page, 192)
    page.wait_for_function("() => document.querySelectorAll('#log .row:not([hidden])').length === 11")
    assert page.evaluate("() => [...document.querySelectorAll('#log mark')].every(m => m.textContent === 'paused-3')")
    page.focus("#filter-input")
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.querySelectorAll('#log .row[hidden]').length === 0")

    # Scrolling up stops following; new lines do not move the view; "Jump to live" follows again.
    page.wait_for_function("() => window.tailsse.following")
    page.locator("#log").hover()
    page.mouse.wheel(0, -1500)
    page.wait_for_function("() => !window.tailsse.following")
    assert page.locator("#jump-button").is_visible()
    top = page.evaluate("document.getElementById('log').scrollTop")
    append(log, "".join(f"later-{i}\n" for i in range(30)))
    wait_for_rows(page, 222)
    assert page.evaluate("document.getElementById('log').scrollTop") == top
    page.wait_for_function("() => document.getElementById('jump-button').textContent.includes('30 new')")
    page.click("#jump-button")
    page.wait_for_function("() => { const l = document.getElementById('log'); return l.scrollHeight - l.scrollTop - l.clientHeight < 30 }")
    assert page.evaluate("window.tailsse.following") is True
    assert not page.locator("#jump-button").is_visible()
    assert page.problems == []


def test_a_hundred_thousand_lines_at_full_speed_keep_the_dom_capped_and_the_page_responsive(web, page, logdir):
    log = logdir / "app.log"
    log.write_bytes(b"")
    srv = web({"app": log}, shared_buffer_bytes=4 << 20)
    page.goto(srv.url("/#source=app&tail=0"))
    wait_for_status(page, "live")
    cap = page.evaluate("Number(document.getElementById('cap-input').value)")
    assert cap == 10000
    before = heap(page)
    # In the page: the longest wait between two animation frames, and the long tasks.
    page.evaluate("""() => {
        window.__probe = { gap: 0, frames: 0, longTasks: [] };
        let last = performance.now();
        const frame = (t) => { window.__probe.gap = Math.max(window.__probe.gap, t - last); window.__probe.frames++; last = t; requestAnimationFrame(frame); };
        requestAnimationFrame(frame);
        new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__probe.longTasks.push(e.duration); }).observe({ type: "longtask" });
    }""")
    count = 100_000
    last_line = f"line-{count:06d} the quick brown fox jumps over the lazy dog"
    payload = "".join(f"line-{i:06d} the quick brown fox jumps over the lazy dog\n" for i in range(1, count + 1)).encode()
    started = time.monotonic()
    append(log, payload)
    page.wait_for_function("t => document.querySelector('#log .row:last-child .text')?.textContent === t",
                           arg=last_line, timeout=120_000, polling=250)
    elapsed = time.monotonic() - started
    probe = page.evaluate("window.__probe")
    shown = lines(page)
    assert len(shown) == cap
    assert shown == [f"line-{i:06d} the quick brown fox jumps over the lazy dog" for i in range(count - cap + 1, count + 1)]
    after = heap(page)
    t0 = time.monotonic()
    page.click("#pause-button")
    page.wait_for_function("() => window.tailsse.paused")
    click_latency = time.monotonic() - t0
    report = (f"100k lines: all in the page after {elapsed:.1f}s; longest wait between frames {probe['gap']:.0f} ms "
              f"({probe['frames']} frames); {len(probe['longTasks'])} long tasks, longest {max(probe['longTasks'] or [0]):.0f} ms; "
              f"click handled in {click_latency * 1000:.0f} ms; JS heap used {before['used'] / 1e6:.1f} MB before, "
              f"{after['used'] / 1e6:.1f} MB after (total {after['total'] / 1e6:.1f} MB); DOM rows {len(shown)}")
    print("\n" + report)
    artifact("page-100k-lines.txt").write_text(report + "\n")
    assert probe["gap"] < 2500, "the page kept drawing frames while the lines poured in"
    assert click_latency < 2.0
    assert after["used"] < before["used"] + 40e6, (before, after)
    assert page.problems == []


def test_log_text_is_never_markup_and_the_csp_header_is_served(web, page, logdir):
    log = logdir / "app.log"
    hostile = ['<img src=x onerror="window.__pwned=1">', "<script>window.__pwned=2</script>",
               "<b>bold?</b> &amp; &lt;", "\x1b[31mred\x1b[0m plain \x1b[1;4;38;5;208morange\x1b[0m \x1b]0;title\x07end"]
    log.write_bytes("".join(x + "\n" for x in hostile).encode())
    srv = web({"app": log})
    response = page.goto(srv.url("/#source=app"))
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    wait_for_rows(page, 4)
    shown = lines(page)
    assert shown[:3] == hostile[:3]
    assert shown[3] == "red plain orange end"
    assert page.evaluate("() => document.querySelectorAll('#log img, #log script, #log b').length") == 0
    assert page.evaluate("() => window.__pwned") is None
    red = page.evaluate("""() => { const s = [...document.querySelectorAll('#log .sgr')].find(e => e.textContent === 'red');
                              return s && [s.className, getComputedStyle(s).color] }""")
    plain = page.evaluate("() => getComputedStyle(document.querySelector('#log .row:last-child .text')).color")
    assert red and "sgr-fg-1" in red[0] and red[1] != plain
    orange = page.evaluate("""() => { const s = [...document.querySelectorAll('#log .sgr')].find(e => e.textContent === 'orange');
                                 return s && [s.className, getComputedStyle(s).color, getComputedStyle(s).fontWeight] }""")
    assert orange and orange[1] == "rgb(255, 135, 0)" and orange[2] == "700" and "sgr-underline" in orange[0]
    assert page.problems == []


def test_markers_and_screenshots_light_and_dark(web, page, logdir):
    app, worker = logdir / "app.log", logdir / "worker.log"
    app.write_bytes(("GET /index.html 200 1.2ms\n"
                     "\x1b[32mINFO\x1b[0m  cache warmed in 41 ms\n"
                     "\x1b[33mWARN\x1b[0m  slow query: SELECT * FROM orders WHERE id = 42 (812 ms)\n"
                     "\x1b[1;31mERROR\x1b[0m upstream timed out: connect() to 10.0.0.7:8080 failed\n").encode())
    worker.write_bytes(b"job 1811 started\njob 1811 done in 3.2 s\n")
    extra, entries = [], []
    if has_journal_directory():
        entries = [(6, "Started nightly backup."), (4, "backup: 3 files changed while being read"),
                   (3, "backup: cannot stat /srv/share: Permission denied")]
        (logdir / "journal").mkdir()
        write_journal(logdir / "journal", entries)
        extra = ["--journal-directory", str(logdir / "journal")]
    srv = web({"app": app, "worker": worker}, extra=extra)
    page.goto(srv.url("/"))
    page.wait_for_selector("#empty:not([hidden])")
    sources = 3 if entries else 2
    assert page.locator("#empty-list button").count() == sources + 1, "each source, and all of them"
    page.click("#empty-list button:has-text('All sources')")
    wait_for_rows(page, 6 + len(entries))
    assert "source=app&source=worker" in page.url
    worker.rename(logdir / "worker.log.1")
    append(worker, "job 1812 started on the new file\n")
    page.wait_for_selector("#log .marker-rotated")
    wait_for_text(page, "job 1812 started on the new file")
    with open(app, "r+b") as f:
        f.truncate(0)
    page.wait_for_selector("#log .marker-truncated")
    append(app, "a very long line that wraps: " + "lorem ipsum dolor sit amet " * 12 + "\n")
    wait_for_rows(page, 9 + len(entries))
    page.fill("#filter-input", "job")
    page.wait_for_function("() => document.querySelectorAll('#log mark').length >= 3")
    page.fill("#filter-input", "")
    page.wait_for_function("() => document.querySelectorAll('#log mark').length === 0")
    box = page.evaluate("() => { const l = document.getElementById('log'); return [l.scrollWidth, l.clientWidth] }")
    assert box[0] <= box[1], "long lines wrap: no horizontal scrolling"
    page.locator("#filter-input").blur()
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        background = page.evaluate("getComputedStyle(document.getElementById('log')).backgroundColor")
        assert (background == "rgb(255, 255, 255)") == (scheme == "light"), background
        page.screenshot(path=str(artifact(f"page-{scheme}.png")))
    page.set_viewport_size({"width": 390, "height": 760})
    box = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert box[0] <= box[1], "no horizontal scrolling at phone width"
    page.screenshot(path=str(artifact("page-phone.png")))
    assert page.problems == []


def test_after_a_502_the_page_retries_by_itself_and_resumes_exactly(web, page, logdir):
    """EventSource gives up for good on a non-200 (a proxy's 502): the page's own backoff takes over.
    Playwright's routes see the page's own requests only, not a SharedWorker's: this is the page
    without SharedWorker (one EventSource per tab; the shared worker's closed stream goes through
    the same check-and-retry, exercised by the login tests)."""
    page.add_init_script("delete window.SharedWorker")
    log = logdir / "app.log"
    log.write_bytes(b"before-1\nbefore-2\n")
    srv = web({"app": log})
    srv.pin_port()
    refused = []

    def proxy_502(route):
        if len(refused) < 2:
            refused.append(route.request.url)
            route.fulfill(status=502, content_type="text/html", body="<h1>502 Bad Gateway</h1>")
        else:
            route.continue_()

    page.goto(srv.url("/#source=app"))
    wait_for_text(page, "before-2")
    page.route("**/events?*", proxy_502)
    srv.kill()
    append(log, "while-down\n")
    srv.start()
    page.wait_for_function("() => document.getElementById('status-detail').textContent.startsWith('retry in')", timeout=20_000)
    wait_for_text(page, "while-down", timeout=30)
    wait_for_status(page, "live")
    append(log, "after\n")
    wait_for_text(page, "after")
    assert lines(page) == ["before-1", "before-2", "while-down", "after"]
    assert len(refused) == 2
    retried = [r for r in refused if "lastEventId=" in r]
    assert retried, f"the page's own retries resume by id: {refused}"
    # The browser logs the cut stream and the 502s as network errors; nothing else may be logged.
    assert [p for p in page.problems if "502" not in p and "net::ERR_" not in p] == []


def test_the_page_works_under_a_base_path(web, page, logdir):
    """Served under `--base-path /logs/` (as behind a proxy that forwards a sub-path): the page,
    its assets, the source list and the live stream all resolve below it."""
    log = logdir / "app.log"
    log.write_bytes(b"first line\n")
    srv = web({"app": log}, extra=["--base-path", "/logs/"])
    page.goto(srv.url("/logs"))
    assert page.url.startswith(srv.url("/logs/")), page.url
    wait_for_text(page, "first line")
    append(log, "appended under the base path\n")
    wait_for_text(page, "appended under the base path")
    assert lines(page) == ["first line", "appended under the base path"]
    wait_for_status(page, "live")
    assert page.problems == []


def test_the_page_works_through_nginx_under_a_sub_path(web, page, logdir, nginx):
    """The README's nginx settings, tailsse under /logs/: the page loads through the proxy, lists
    the source and shows lines as they are appended."""
    log = logdir / "app.log"
    log.write_bytes(b"first line\n")
    srv = web({"app": log}, extra=["--base-path", "/logs/"])
    proxy = nginx([srv.port])
    page.goto(f"http://127.0.0.1:{proxy.port}/logs/")
    wait_for_text(page, "first line")
    append(log, "appended through nginx\n")
    wait_for_text(page, "appended through nginx")
    assert lines(page) == ["first line", "appended through nginx"]
    wait_for_status(page, "live")
    assert page.problems == []


LAST_ROW_IN_VIEW_JS = """() => {
    const log = document.getElementById('log');
    const rows = log.querySelectorAll('.row');
    const last = rows[rows.length - 1].getBoundingClientRect();
    const box = log.getBoundingClientRect();
    return window.tailsse.following && box.top - 1 <= last.top && last.bottom <= box.bottom + 1;
}"""


def test_a_huge_line_is_folded_and_following_the_bottom_holds(web, page, logdir):
    """A 1 MB line (in 256 pieces of 4 KiB, joined in one row) is shown folded with its size; the
    line after it is scrolled into view; unfolding shows it whole, and following still holds."""
    log = logdir / "app.log"
    log.write_bytes(b"".join(f"filler {i}\n".encode() for i in range(40)))
    srv = web({"app": log})
    page.goto(srv.url("/#source=app&tail=40"))
    wait_for_text(page, "filler 39")
    wait_for_status(page, "live")
    huge = "".join(chr(ord("a") + i % 26) for i in range(1_000_000))
    append(log, huge + "\n")
    append(log, "after the huge line\n")
    wait_for_text(page, "after the huge line")
    page.wait_for_function(LAST_ROW_IN_VIEW_JS, timeout=10000)
    fold = page.locator("#log .row.folded .fold")
    assert fold.count() == 1
    assert fold.text_content() == "… show all (1.0 MB)"
    shown = page.evaluate("() => document.querySelector('#log .row.folded .text').textContent")
    assert shown == huge[:1000]
    fold.click()
    assert page.evaluate("() => document.querySelector('#log .fold').closest('.row').querySelector('.text').textContent.length") == 1_000_000
    page.locator("#log .fold").click()
    assert page.locator("#log .row.folded").count() == 1
    append(log, "and one more\n")
    wait_for_text(page, "and one more")
    page.wait_for_function(LAST_ROW_IN_VIEW_JS, timeout=10000)
    assert lines(page)[-2:] == ["after the huge line", "and one more"]
    assert page.problems == []


def test_download_saves_exactly_what_the_filtered_view_shows(web, page, logdir):
    a, b = logdir / "a.log", logdir / "b.log"
    a.write_bytes(b"")
    b.write_bytes(b"")
    srv = web({"a": a, "b": b})
    page.goto(srv.url("/#source=a&source=b"))
    wait_for_status(page, "live")
    for i in range(20):
        append(a, f"a-{i} {'even' if i % 2 == 0 else 'odd'} <b>&amp;</b> é\n")
        append(b, f"b-{i} {'even' if i % 2 == 0 else 'odd'}\n")
    wait_for_text(page, "b-19 odd")
    page.fill("#filter-input", "odd")
    page.wait_for_function("() => document.querySelectorAll('#log .row:not([hidden])').length === 20")
    shown = [f"{r['source']}\t{r['text']}" for r in rows(page) if not r["hidden"]]
    with page.expect_download() as info:
        page.click("#download-button")
    download = info.value
    assert download.suggested_filename.startswith("a+b-") and download.suggested_filename.endswith(".log")
    saved = Path(download.path()).read_text(encoding="utf-8")
    assert saved == "".join(line + "\n" for line in shown)
    assert "a-1 odd <b>&amp;</b> é" in saved and "even" not in saved
    assert page.problems == []


def test_json_and_logfmt_lines_show_as_fields_with_their_level_coloured(web, page, logdir):
    log = logdir / "app.log"
    log.write_text('{"level":"error","msg":"disk full","free":{"bytes":0}}\n'
                   'level=warn msg="slow request" ms=1200\n'
                   'just text = not fields\n'
                   '{"broken json"\n')
    srv = web({"app": log})
    page.goto(srv.url("/#source=app"))
    wait_for_text(page, '{"broken json"')
    texts = lines(page)
    assert page.locator("#log .field").count() == 0
    page.click("#fields-button")
    page.wait_for_function("() => document.querySelectorAll('#log .row.as-fields').length === 2")
    keys = page.evaluate("() => [...document.querySelectorAll('#log .row.as-fields')].map("
                         "r => [...r.querySelectorAll('.field')].map(f => f.textContent))")
    assert keys == [["level=error", "msg=disk full", 'free={"bytes":0}'], ["level=warn", "msg=slow request", "ms=1200"]]
    classes = page.evaluate("() => [...document.querySelectorAll('#log .row')].map(r => r.className)")
    assert "prio-3" in classes[0] and "prio-4" in classes[1]
    assert "prio-" not in classes[2] and "as-fields" not in classes[2] and "as-fields" not in classes[3]
    append(log, "ts=1 level=debug msg=live\n")
    page.wait_for_function("() => document.querySelectorAll('#log .row.as-fields').length === 3")
    page.keyboard.press("f")
    page.wait_for_function("() => document.querySelectorAll('#log .row.as-fields').length === 0")
    assert lines(page) == texts + ["ts=1 level=debug msg=live"]
    assert page.evaluate("() => [...document.querySelectorAll('#log .row')].filter(r => /prio-/.test(r.className)).length") == 0
    assert page.problems == []
