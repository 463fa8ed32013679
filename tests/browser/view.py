"""Reading the viewer page's DOM, the way a person reads it."""

from __future__ import annotations

ROWS_JS = """() => [...document.querySelectorAll('#log .row')].map(r => ({
    source: r.querySelector('.tag')?.textContent ?? '',
    file: r.querySelector('.file')?.textContent ?? null,
    text: r.querySelector('.text')?.textContent ?? '',
    marker: r.classList.contains('row-marker'),
    hidden: r.hidden,
}))"""


def rows(page) -> list[dict]:
    return page.evaluate(ROWS_JS)


def lines(page, source: str | None = None) -> list[str]:
    return [r["text"] for r in rows(page) if not r["marker"] and (source is None or r["source"] == source)]


def wait_for_text(page, text: str, timeout: float = 20.0) -> None:
    page.wait_for_function(
        "t => [...document.querySelectorAll('#log .row .text')].some(e => e.textContent === t)",
        arg=text, timeout=timeout * 1000)


def wait_for_rows(page, n: int, timeout: float = 20.0) -> None:
    page.wait_for_function("n => document.querySelectorAll('#log .row').length >= n", arg=n, timeout=timeout * 1000)


def wait_for_status(page, state: str, timeout: float = 20.0) -> None:
    page.wait_for_function("s => document.getElementById('status').dataset.state === s", arg=state, timeout=timeout * 1000)


def heap(page) -> dict:
    """The JS heap after a full garbage collection, from the DevTools protocol."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("HeapProfiler.enable")
        cdp.send("HeapProfiler.collectGarbage")
        usage = cdp.send("Runtime.getHeapUsage")
    finally:
        cdp.detach()
    return {"used": usage["usedSize"], "total": usage["totalSize"]}


def scroll_to_the_start(page, rounds: int) -> None:
    """Scrolls to the top as a user does, each time waiting for the earlier lines to come in
    above, until the page says the start was reached (the button hides) or `rounds` ran out."""
    for _ in range(rounds):
        if page.is_hidden("#earlier-button"):
            return
        before = len(rows(page))
        page.hover("#log")
        page.mouse.wheel(0, -100000)
        page.wait_for_function("n => document.querySelectorAll('#log .row').length > n || document.getElementById('earlier-button').hidden", arg=before)
        page.wait_for_function("() => !document.getElementById('earlier-button').disabled")
