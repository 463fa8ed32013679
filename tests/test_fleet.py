"""A fleet's journals through systemd-journal-upload → systemd-journal-remote (issue 15).

Three hosts in network namespaces made here ship their own journal files with
systemd-journal-upload over veth links to systemd-journal-remote in a fourth namespace (the
collector, `--split-mode=host`: one `remote-ADDRESS.journal` per host). tailsse follows the
collector's directory with `--journal-directory`: every host's entries stream, `host=` selects one,
`GET /sources` lists the hosts, and a host that starts uploading later appears without a restart.

The live stream is in journal order (by time across hosts), so each step writes a host's entries
with the current time and waits for them before the next host writes (see README "Watching a
fleet" on entries that arrive late).
"""

from __future__ import annotations

import pytest

from fleet_support import Fleet, fleet_unavailable
from http_client import SSEStream, request
from server import wait_until

_why = fleet_unavailable()
pytestmark = pytest.mark.skipif(_why is not None, reason=f"a fleet in network namespaces cannot be made here: {_why}")


@pytest.fixture
def fleet(tmp_path):
    made = Fleet(tmp_path / "fleet")
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
        assert sorted(p.name for p in fleet.output.glob("remote-*.journal")) == sorted(
            f"remote-{h.address}.journal" for h in hosts.values())
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
        assert f"remote-{d.address}.journal" in {p.name for p in fleet.output.glob("remote-*.journal")}

        # host=b saw nothing of d, and still gets b's new entries.
        hosts["b"].log(["b after d"])
        only_b.wait_for(lambda s: by_host(s).get("b", [])[-1:] == ["b after d"], 30, "b's entry after d joined")
        assert set(by_host(only_b)) == {"b"}

    # A new client selecting two hosts reads the whole collected journal: only theirs, in order.
    with SSEStream(srv.port, "/journal?tail=all&host=a&host=d") as two:
        two.wait_for(lambda s: len(s.messages()) >= len(expected["a"]) + 5, 30, "a's and d's entries")
        assert by_host(two) == {"a": expected["a"], "d": texts + ["d again"]}
