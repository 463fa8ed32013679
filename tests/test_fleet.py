"""A fleet's journals through systemd-journal-upload → systemd-journal-remote (issue 15).

Three hosts in network namespaces made here ship their own journal files with
systemd-journal-upload over veth links to systemd-journal-remote in a fourth namespace (the
collector, `--split-mode=none` as README "Watching a fleet" sets it up: every host in one file,
numbered in arrival order). tailsse follows the collector's directory with `--journal-directory`:
every host's entries stream, `host=` selects one, `GET /sources` lists the hosts, a host that starts
uploading later appears without a restart, and a host that uploads a backlog late (entries older
than others already streamed) is streamed live and on resume, exactly once. With journal-remote's
default `--split-mode=host` (a file per host, merged by time: late entries are skipped) `/sources`
says so.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from fleet_support import Fleet, fleet_unavailable
from http_client import SSEStream, request
from server import wait_until

_why = fleet_unavailable()
pytestmark = pytest.mark.skipif(_why is not None, reason=f"a fleet in network namespaces cannot be made here: {_why}")


@pytest.fixture(params=["none"])
def fleet(tmp_path, request):
    made = Fleet(tmp_path / "fleet", split_mode=request.param)
    try:
        made.start_collector()
        yield made
    finally:
        print(made.log_text())
        made.close()


def hosts_listed(port: int) -> list[str]:
    (journal,) = request(port, "/sources").json()
    return journal["hosts"]


def by_host(stream: SSEStream) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for event in stream.messages():
        seen.setdefault(event.json.get("host"), []).append(event.json["text"])
    return seen


def test_three_hosts_then_a_fourth_stream_through_journal_remote(tailsse, fleet):
    srv = tailsse({}, extra=["--journal-directory", str(fleet.output)])
    assert hosts_listed(srv.port) == []
    hosts = {name: fleet.add_host(name) for name in ("a", "b", "c")}
    expected: dict[str, list[str]] = {name: [] for name in hosts}

    with SSEStream(srv.port, "/journal?tail=all") as every, SSEStream(srv.port, "/journal?tail=all&host=b") as only_b:
        every.wait_ready()
        only_b.wait_ready()
        # Each host starts shipping while tailsse runs: its file appears in the collector's directory.
        for name, host in hosts.items():
            texts = [f"{name} boot {i}" for i in range(5)]
            host.log(texts)
            fleet.start_upload(host)
            expected[name] += texts
            every.wait_for(lambda s: by_host(s).get(name, []) == texts, 30, f"host {name}'s first entries")
        assert [p.name for p in fleet.output.glob("*.journal")] == ["all.journal"]
        assert hosts_listed(srv.port) == ["a", "b", "c"]

        # Live entries from every host, in turns, each shipped by the running uploads.
        for round in range(3):
            for name, host in hosts.items():
                texts = [f"{name} live {round}.{i}" for i in range(3)]
                host.log(texts)
                expected[name] += texts
                every.wait_for(lambda s: by_host(s).get(name, []) == expected[name], 30, f"host {name}'s round {round}")

        only_b.wait_for(lambda s: len(s.messages()) >= len(expected["b"]), 30, "host b's entries on host=b")
        assert by_host(only_b) == {"b": expected["b"]}
        assert by_host(every) == expected

        # A fourth host uploads for the first time: nothing restarts.
        pid = srv.pid
        d = fleet.add_host("d")
        texts = [f"d first {i}" for i in range(4)]
        d.log(texts)
        fleet.start_upload(d)
        every.wait_for(lambda s: by_host(s).get("d", []) == texts, 30, "the new host d's entries")
        d.log(["d again"])
        every.wait_for(lambda s: by_host(s).get("d", []) == texts + ["d again"], 30, "host d's live entry")
        assert hosts_listed(srv.port) == ["a", "b", "c", "d"]
        assert srv.pid == pid and srv.running()

        # host=b saw nothing of d, and still gets b's new entries.
        hosts["b"].log(["b after d"])
        only_b.wait_for(lambda s: by_host(s).get("b", [])[-1:] == ["b after d"], 30, "b's entry after d joined")
        assert set(by_host(only_b)) == {"b"}

    # A new client selecting two hosts reads the whole collected journal: only theirs, in order.
    with SSEStream(srv.port, "/journal?tail=all&host=a&host=d") as two:
        two.wait_for(lambda s: len(s.messages()) >= len(expected["a"]) + 5, 30, "a's and d's entries")
        assert by_host(two) == {"a": expected["a"], "d": texts + ["d again"]}


def test_a_host_uploading_a_backlog_late_is_streamed_live_and_on_resume_exactly_once(tailsse, fleet):
    """Entries that reach the collector after newer ones of another host were streamed (a host
    that was offline uploads its backlog) come live, in the order they arrived, and a client
    resuming from before them gets each once: the stream is the collector's journal, entry for
    entry (`journalctl` on its directory is the reference)."""
    srv = tailsse({}, extra=["--journal-directory", str(fleet.output)])
    a, b = fleet.add_host("a"), fleet.add_host("b")
    with SSEStream(srv.port, "/journal?tail=all") as live:
        live.wait_ready()
        a.log(["a 1"])
        fleet.start_upload(a)
        live.wait_for(lambda s: by_host(s).get("a") == ["a 1"], 30, "a's first entry")
        resume_from = live.messages()[-1].own_id
        fleet.stop_upload(a)
        a.log([f"a backlog {i}" for i in range(50)])    # stamped now, shipped later
        b.log([f"b {i}" for i in range(5)])             # stamped after a's backlog, shipped first
        fleet.start_upload(b)
        live.wait_for(lambda s: "b 4" in s.texts(), 30, "b's entries")
        fleet.start_upload(a)
        live.wait_for(lambda s: "a backlog 49" in s.texts(), 30, "a's backlog, older than b's entries already streamed")
        a.log(["a after"])
        b.log(["b after"])
        live.wait_for(lambda s: {"a after", "b after"} <= set(s.texts()), 30, "the entries after")
        streamed = [(e.json["text"], e.own_id) for e in live.messages()]
    collected = [json.loads(line) for line in subprocess.run(
        ["journalctl", "--no-pager", "-D", str(fleet.output), "-o", "json"], check=True, capture_output=True, text=True).stdout.splitlines()]
    assert streamed == [(e["MESSAGE"], e["__CURSOR"]) for e in collected]
    texts = [t for t, _ in streamed]
    assert {f"a backlog {i}" for i in range(50)} <= set(texts)
    # Arrival order: b's entries came before a's older backlog, and were not skipped by it.
    assert texts.index("b 4") < texts.index("a backlog 0")
    with SSEStream(srv.port, "/journal?tail=0", last_event_id=resume_from) as resumed:
        resumed.wait_for(lambda s: len(s.messages()) >= len(streamed) - 1, 30, "every entry after a 1")
        assert [(e.json["text"], e.own_id) for e in resumed.messages()] == streamed[1:]
    assert "notice" not in request(srv.port, "/sources").json()[0]


@pytest.mark.parametrize("fleet", ["host"], indirect=True)
def test_hosts_written_separately_are_named_in_a_notice(tailsse, fleet):
    """journal-remote's default SplitMode=host: a file per host, merged by time, so late entries
    are skipped; tailsse says so in /sources (and the page shows it)."""
    srv = tailsse({}, extra=["--journal-directory", str(fleet.output)])
    for name in ("a", "b"):
        host = fleet.add_host(name)
        host.log([f"{name} 1"])
        fleet.start_upload(host)
    wait_until(lambda: len(list(fleet.output.glob("remote-*.journal"))) == 2, 30, "two hosts' files")
    wait_until(lambda: "SplitMode=host" in (request(srv.port, "/sources").json()[0].get("notice") or ""), 10, "the notice")
    (journal,) = request(srv.port, "/sources").json()
    assert "2 hosts" in journal["notice"] and "SplitMode=none" in journal["notice"] and journal["watch"] == "inotify"
