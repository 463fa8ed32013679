"""The chaos harness of issue 11: many reconnecting clients, writers that append and rotate in every
way README promises to follow, and tailsse killed with SIGKILL and restarted under them.

- Several sources (log files), each with its own ``ChaosWriter`` thread: numbered lines appended
  (sometimes a line in two writes), rotation by rename like logrotate (`.N` -> `.N+1`, the file ->
  `.1`, then a few more lines into the still-open old file, sometimes ending without LF), bursts of
  2-5 such rotations within milliseconds, and copytruncate (shift, copy to `.1`, truncate; the
  writer never writes between its own copy and truncate, so anything lost is tailsse's). Rotated
  generations are never deleted, so every id stays resumable.
- ``ChaosClient`` threads follow one source (`/sources/NAME`) or several at once
  (`/events?source=A&source=B`, composite ids), each connection cut at a random point (after some
  events, or after some bytes, often inside an event; FIN or RST), and reconnect with the id of the
  last event dispatched — as `Last-Event-ID` or as `?lastEventId=` — backing off while the server
  is down.
- ``Chaos`` starts them, kills tailsse with SIGKILL at random moments (rotating some files while it
  is down) and starts it again with the same arguments, state directory and port, stops the
  writers, waits (with a deadline) until every client has every line, and compares: per client and
  source, the received lines must equal the written ones, in order, no gap, no duplicate.

Parameters (``ChaosConfig.from_env``): SOAK_SECONDS (how long the writers write), SOAK_CLIENTS,
SOAK_SOURCES, SOAK_RESTARTS, SOAK_RATE (lines per second and source), SOAK_SEED (everything random
is drawn from it: the writers' schedules, the clients' choices, the kill moments; the timing of
threads is not, so a seed reproduces the schedule, not every interleaving).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from http_client import HTTPError, SSEStream
from server import Server, append


# -- configuration -------------------------------------------------------------------------------

@dataclass
class ChaosConfig:
    seed: int
    seconds: float = 15.0          # writers write for this long
    clients: int = 100
    sources: int = 3
    restarts: int = 2              # kill -9 + start
    rate: float = 80.0             # lines per second and source (on average; in bursts)
    rotate_every: tuple[int, int] = (60, 220)   # lines between rotations of a source
    catch_up_seconds: float = 120.0             # after the writers stop, every client must be done
    rotations: tuple[str, ...] = ("rename", "burst", "copytruncate")   # the kinds the writers use

    @classmethod
    def from_env(cls, **defaults) -> "ChaosConfig":
        env = os.environ
        seed = int(env.get("SOAK_SEED") or defaults.pop("seed", 0) or random.SystemRandom().randrange(1, 2 ** 31))
        cfg = cls(seed=seed, **defaults)
        for name, kind in (("seconds", float), ("clients", int), ("sources", int), ("restarts", int),
                           ("rate", float), ("catch_up_seconds", float)):
            value = env.get(f"SOAK_{name.upper()}")
            if value:
                setattr(cfg, name, kind(value))
        if env.get("SOAK_ROTATIONS"):
            cfg.rotations = tuple(k for k in env["SOAK_ROTATIONS"].split(",") if k)
            assert set(cfg.rotations) <= set(ROTATIONS) and cfg.rotations, f"SOAK_ROTATIONS: any of {ROTATIONS}"
        if cfg.restarts and cfg.seconds < 2 * cfg.restarts:
            raise ValueError("SOAK_SECONDS too short for SOAK_RESTARTS")
        return cfg

    def describe(self) -> str:
        return (f"SOAK_SEED={self.seed} SOAK_SECONDS={self.seconds:g} SOAK_CLIENTS={self.clients} "
                f"SOAK_SOURCES={self.sources} SOAK_RESTARTS={self.restarts} SOAK_RATE={self.rate:g} "
                f"SOAK_ROTATIONS={','.join(self.rotations)}")


# -- writers -------------------------------------------------------------------------------------

ROTATIONS = ("rename", "burst", "copytruncate")
LETTERS = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=:/"


class ChaosWriter(threading.Thread):
    """Writes numbered lines to one log file and rotates it at random (see the module's doc).

    `written` is the sequence a client must receive, in order. Rotations are drawn every
    `rotate_every` lines; the first three of a source are one of each kind, so each source sees
    every kind. `request(kind)` asks for a rotation now (the orchestrator: while tailsse is down).
    """

    def __init__(self, name: str, path: Path, seed: int, rate: float, rotate_every: tuple[int, int],
                 kinds: tuple[str, ...] = ROTATIONS) -> None:
        super().__init__(daemon=True, name=f"writer-{name}")
        self.source = name
        self.path = Path(path)
        self.rng = random.Random(seed)
        self.rate = rate
        self.rotate_every = rotate_every
        self.written: list[str] = []
        self.counts = {"rename": 0, "burst": 0, "burst_rotations": 0, "copytruncate": 0, "split_lines": 0,
                       "unterminated": 0}
        self.log: list[tuple[float, int, str]] = []   # (time, lines written so far, what happened)
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.done = threading.Event()
        self._requests: list[str] = []
        self._lock = threading.Lock()
        self.t0 = time.monotonic()   # the run's start, for the log
        # While tailsse is down (set by the orchestrator): copytruncates so far; None while it is up.
        self.down_copytruncates: int | None = None
        self.kinds = kinds
        first = list(kinds)
        self.rng.shuffle(first)
        self._kinds = first

    # -- file operations ---------------------------------------------------------------------
    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @staticmethod
    def _write(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def _text(self) -> str:
        i = len(self.written)
        # Varied text, as in a real log: ids check the 16 bytes before their offset, which cannot
        # tell apart two contents of a file (before and after a truncation) that end alike there.
        return f"{self.source}-{i:07d}-" + "".join(self.rng.choices(LETTERS, k=self.rng.randint(0, 60)))

    def _line(self, fd: int, split_ok: bool = True) -> None:
        text = self._text()
        data = (text + "\n").encode()
        if split_ok and self.rng.random() < 0.08:
            # A line in two writes: the server must hold the partial line until its LF.
            cut = self.rng.randint(1, len(data) - 1)
            self._write(fd, data[:cut])
            if self.rng.random() < 0.5:
                time.sleep(self.rng.uniform(0, 0.005))
            self._write(fd, data[cut:])
            self.counts["split_lines"] += 1
        else:
            self._write(fd, data)
        self.written.append(text)

    def _shift(self) -> None:
        """app.log.N -> app.log.N+1, highest first (nothing is deleted)."""
        d, base = self.path.parent, self.path.name
        n = 1
        while (d / f"{base}.{n}").exists():
            n += 1
        for k in range(n - 1, 0, -1):
            os.rename(d / f"{base}.{k}", d / f"{base}.{k + 1}")

    def _rename(self, fd: int) -> int:
        """Rotates by rename; the program writes on to its old file for a moment, then reopens."""
        self._shift()
        os.rename(self.path, self.path.parent / f"{self.path.name}.1")
        for _ in range(self.rng.randint(0, 3)):
            self._line(fd, split_ok=False)
        if self.rng.random() < 0.25:
            # A last line without its LF: tailsse sends it as a line when it drains the old file.
            text = self._text()
            self._write(fd, text.encode())
            self.written.append(text)
            self.counts["unterminated"] += 1
        os.close(fd)
        return self._open()

    def _burst(self, fd: int) -> int:
        """Several rename rotations within milliseconds, a few lines in each new file."""
        k = self.rng.randint(2, 5)
        for _ in range(k):
            fd = self._rename(fd)
            for _ in range(self.rng.randint(1, 30)):
                self._line(fd, split_ok=False)
        self.counts["burst_rotations"] += k
        self._note(f"({k} renames)")
        return fd

    def _copytruncate(self, fd: int) -> int:
        """logrotate's copytruncate, without its window of loss: nothing is written between the
        copy and the truncation (the program's descriptor is O_APPEND, so it goes on at 0)."""
        self._shift()
        shutil.copyfile(self.path, self.path.parent / f"{self.path.name}.1")
        os.truncate(self.path, 0)
        return fd

    def _rotate(self, fd: int, kind: str) -> int:
        if kind not in self.kinds:
            kind = "rename"
        if kind == "copytruncate" and self.down_copytruncates is not None:
            # README promises resume across one copytruncate while tailsse is down, not two.
            if self.down_copytruncates >= 1:
                kind = "rename"
            else:
                self.down_copytruncates += 1
        if kind == "rename":
            fd = self._rename(fd)
        elif kind == "burst":
            fd = self._burst(fd)
        else:
            fd = self._copytruncate(fd)
        self.counts[kind] += 1
        self._note(kind)
        return fd

    def _note(self, what: str) -> None:
        self.log.append((time.monotonic() - self.t0, len(self.written), what))

    @property
    def rotations(self) -> int:
        return self.counts["rename"] + self.counts["burst_rotations"] + self.counts["copytruncate"]

    # -- control -----------------------------------------------------------------------------
    def request(self, kind: str) -> None:
        with self._lock:
            self._requests.append(kind)

    def _next_kind(self) -> str:
        if self._kinds:
            return self._kinds.pop()
        weights = {"rename": 0.45, "burst": 0.25, "copytruncate": 0.30}
        return self.rng.choices(self.kinds, weights=[weights[k] for k in self.kinds])[0]

    def run(self) -> None:
        try:
            fd = self._open()
            started = time.monotonic()
            next_rotation = self.rng.randint(*self.rotate_every)
            since = 0
            while not self.stop.is_set():
                with self._lock:
                    requested = self._requests.pop(0) if self._requests else None
                if requested:
                    fd = self._rotate(fd, requested)
                    since = 0
                    continue
                if since >= next_rotation:
                    fd = self._rotate(fd, self._next_kind())
                    since = 0
                    next_rotation = self.rng.randint(*self.rotate_every)
                    continue
                # Lines come in runs of 1-20 at once, paced to `rate` on average.
                for _ in range(min(self.rng.randint(1, 20), next_rotation - since)):
                    self._line(fd)
                    since += 1
                ahead = len(self.written) / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    self.stop.wait(ahead * self.rng.uniform(0.5, 1.5))
            os.close(fd)
        except BaseException as e:  # noqa: BLE001 - reported by the harness
            self.error = e
        finally:
            self.done.set()


# -- clients -------------------------------------------------------------------------------------

class ChaosClient(threading.Thread):
    """Follows `sources` (one: `/sources/NAME`; several: `/events`) over many short connections."""

    def __init__(self, index: int, get_port, sources: list[str], start_id: str, seed: int,
                 expected) -> None:
        super().__init__(daemon=True, name=f"client-{index}")
        self.index = index
        self.get_port = get_port
        self.sources = sources
        if len(sources) == 1:
            self.base = f"/sources/{sources[0]}?tail=0"
        else:
            self.base = "/events?" + "&".join(f"source={s}" for s in sources) + "&tail=0"
        self.rng = random.Random(seed)
        self.expected = expected          # name -> number of lines to receive, or None while unknown
        self.received: dict[str, list[str]] = {s: [] for s in sources}
        self.ids: dict[str, list[str]] = {s: [] for s in sources}   # the id of each received line
        self.last_id = start_id
        self.history: list[tuple[float, str, int]] = []   # (time, id resumed from, lines so far)
        self.connections = 0
        self.refused = 0
        self.unavailable = 0   # 503 answers (connection limits)
        self.cut_mid_event = 0
        self.by_query = 0
        self.markers: dict[str, int] = {}
        self.error: str | None = None
        self.stop = threading.Event()
        self.finished = threading.Event()

    def done(self) -> bool:
        for s in self.sources:
            n = self.expected(s)
            if n is None or len(self.received[s]) < n:
                return False
        return True

    def progress(self) -> int:
        return sum(len(v) for v in self.received.values())

    def run(self) -> None:
        backoff = 0.05
        try:
            while not self.stop.is_set() and not self.done() and self.error is None:
                outcome = self._one_connection()
                if outcome == "down":
                    # tailsse is down: back off (with jitter) as EventSource waits `retry` ms.
                    self.stop.wait(backoff * self.rng.uniform(0.5, 1.5))
                    backoff = min(backoff * 2, 1.0)
                else:
                    backoff = 0.05
                    if self.rng.random() < 0.1:
                        self.stop.wait(self.rng.uniform(0, 0.5))   # away for a moment: falls behind
        except BaseException as e:  # noqa: BLE001
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.finished.set()

    def _one_connection(self) -> str:
        path, header = self.base, self.last_id
        if self.rng.random() < 0.3:
            path += "&lastEventId=" + quote(self.last_id, safe="")
            header = None
            self.by_query += 1
        try:
            s = SSEStream(self.get_port(), path, last_event_id=header, timeout=10)
        except (ConnectionError, HTTPError, TimeoutError, socket.timeout, OSError):
            self.refused += 1
            return "down"
        if s.status == 503:
            self.unavailable += 1
            s.close()
            return "down"
        self.connections += 1
        self.history.append((time.monotonic(), self.last_id, self.progress()))
        if s.status != 200:
            s.close()
            raise AssertionError(f"status {s.status} on reconnect with id {self.last_id!r}")
        mode = self.rng.choice(("events", "bytes", "bytes", "events", "long"))
        budget_events = self.rng.randint(0, 120) if mode != "long" else 10 ** 9
        budget_bytes = self.rng.randint(1, 12000)
        handled = 0
        messages = 0
        try:
            while not self.stop.is_set() and not self.done() and self.error is None:
                max_bytes = None
                if mode == "bytes":
                    max_bytes = budget_bytes - len(s.body)
                    if max_bytes <= 0:
                        break
                try:
                    alive = s.pump(timeout=1.0, max_bytes=max_bytes)
                except OSError:
                    alive = False
                events = s.parser.events
                for ev in events[handled:]:
                    messages += self._handle(ev)
                handled = len(events)
                # Keep only what has not been handled (long connections).
                if handled > 512:
                    del events[:handled]
                    handled = 0
                if not alive:
                    break
                if messages >= budget_events:
                    break
        finally:
            # EventSource's reconnect id: the last event ID string at the last dispatch.
            if s.parser.last_event_id:
                self.last_id = s.parser.last_event_id
            if s.body and not bytes(s.body[-2:]) == b"\n\n":
                self.cut_mid_event += 1
            s.close(reset=self.rng.random() < 0.3)
        return "ok"

    def _handle(self, ev) -> int:
        if ev.type == "message":
            obj = ev.json
            source = obj["source"]
            if obj.get("continues") is not None:
                raise AssertionError("no line in this test is long enough to be split")
            if source not in self.received:
                raise AssertionError(f"a line of source {source!r}, not asked for")
            self.received[source].append(obj["text"])
            self.ids[source].append(ev.last_event_id)
            return 1
        self.markers[ev.type] = self.markers.get(ev.type, 0) + 1
        if ev.type in ("reset", "end"):
            raise AssertionError(f"unexpected {ev.type} event after resuming from {self.history[-1][1]!r}: {ev.data}")
        return 0


# -- the run -------------------------------------------------------------------------------------

@dataclass
class ChaosResult:
    config: ChaosConfig
    written: dict[str, list[str]]
    clients: list[ChaosClient]
    writers: dict[str, ChaosWriter]
    restarts: int
    kills: list[float] = field(default_factory=list)   # seconds into the run
    wall: float = 0.0
    catch_up: float = 0.0
    failures: list[str] = field(default_factory=list)
    context: list[str] = field(default_factory=list)   # printed with failures: the writers' logs

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        lines = sum(len(v) for v in self.written.values())
        c = {k: sum(w.counts[k] for w in self.writers.values()) for k in next(iter(self.writers.values())).counts}
        received = sum(cl.progress() for cl in self.clients)
        markers: dict[str, int] = {}
        for cl in self.clients:
            for k, v in cl.markers.items():
                markers[k] = markers.get(k, 0) + v
        multiplexed = sum(len(cl.sources) > 1 for cl in self.clients)
        return (f"chaos {self.config.describe()}: {lines} lines written in {len(self.written)} sources "
                f"({', '.join(f'{k} {len(v)}' for k, v in self.written.items())}); "
                f"{len(self.clients)} clients ({multiplexed} multiplexed) received {received} lines over "
                f"{sum(cl.connections for cl in self.clients)} connections "
                f"({sum(cl.cut_mid_event for cl in self.clients)} cut mid-event, "
                f"{sum(cl.by_query for cl in self.clients)} resumed by ?lastEventId, "
                f"{sum(cl.refused for cl in self.clients)} refused while down, "
                f"{sum(cl.unavailable for cl in self.clients)} 503); "
                f"{self.restarts} kill -9 restarts at {', '.join(f'{t:.1f}s' for t in self.kills)}; "
                f"rotations: {c['rename']} rename, {c['burst']} bursts ({c['burst_rotations']} renames), "
                f"{c['copytruncate']} copytruncate; {c['split_lines']} lines in two writes, "
                f"{c['unterminated']} unterminated at rotation; markers {markers}; "
                f"wall {self.wall:.1f}s (catch-up {self.catch_up:.1f}s)")

    def report(self) -> str:
        shown = self.failures[:5]
        more = f"\n... and {len(self.failures) - 5} more failures" if len(self.failures) > 5 else ""
        return (f"{len(self.failures)} failures; reproduce with {self.config.describe()}\n"
                + "\n\n".join(shown) + more + "\n\n" + "\n".join(self.context) + "\n" + self.summary())


def first_divergence(expected: list[str], got: list[str], ids: list[str]) -> str:
    """Where `got` leaves `expected`, with the lines and ids around it (the id a line came with).
    Every written line is unique (it carries its number), so a line's place tells what happened."""
    n = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b), min(len(expected), len(got)))
    if n == len(expected) == len(got):
        return "equal"
    place = {text: i for i, text in enumerate(expected)}
    if n < len(got) and n < len(expected):
        j = place.get(got[n])
        if j is None:
            what = f"received {got[n]!r}, never written"
        elif j > n:
            what = f"{j - n} lines missing: written lines {n}..{j - 1} ({expected[n]!r} .. {expected[j - 1]!r})"
        else:
            what = f"line {j} ({got[n]!r}) received again: duplicate or out of order"
    elif n < len(expected):
        what = f"the last {len(expected) - n} lines missing (from {expected[n]!r})"
    else:
        what = f"{len(got) - n} lines more than written (first {got[n]!r})"
    around = []
    for i in range(max(0, n - 3), min(max(len(expected), len(got)), n + 4)):
        e = repr(expected[i]) if i < len(expected) else "-"
        g = f"{got[i]!r} id {ids[i]}" if i < len(got) else "-"
        around.append(f"    [{i}] written {e:.44} received {g}")
    return (f"first divergence at line {n} of {len(expected)} written ({len(got)} received): {what}\n"
            + "\n".join(around))


class Chaos:
    """One chaos run against the server `make_server(files)` returns (a started ``Server``)."""

    def __init__(self, make_server, logdir: Path, config: ChaosConfig) -> None:
        self.make_server = make_server
        self.logdir = Path(logdir)
        self.config = config
        self.rng = random.Random(config.seed)
        self.names = [f"s{i}" for i in range(config.sources)]
        self.paths = {n: self.logdir / f"{n}.log" for n in self.names}
        self.server: Server | None = None

    def _subsets(self) -> list[tuple[str, ...]]:
        subsets: list[tuple[str, ...]] = [(n,) for n in self.names]
        if len(self.names) > 1:
            subsets.append(tuple(self.names))
            subsets += [tuple(self.names[i:i + 2]) for i in range(len(self.names) - 1)]
        return subsets

    def _start_ids(self, srv: Server, subsets) -> dict[tuple[str, ...], str]:
        """The id after a sync line in each source, for each subset a client may follow."""
        streams = {}
        try:
            for subset in subsets:
                path = (f"/sources/{subset[0]}?tail=0" if len(subset) == 1 else
                        "/events?" + "&".join(f"source={s}" for s in subset) + "&tail=0")
                streams[subset] = SSEStream(srv.port, path, timeout=30)
                streams[subset].wait_ready()
            for n in self.names:
                append(self.paths[n], f"sync {n}\n")
            ids = {}
            for subset, s in streams.items():
                msgs = s.wait_messages(len(subset), timeout=30)
                assert sorted(m.json["text"] for m in msgs) == sorted(f"sync {n}" for n in subset), s.texts()
                ids[subset] = s.parser.last_event_id
            return ids
        finally:
            for s in streams.values():
                s.close()

    def run(self) -> ChaosResult:
        cfg = self.config
        t0 = time.monotonic()
        for p in self.paths.values():
            p.write_bytes(b"")
        srv = self.server = self.make_server(self.paths)
        srv.pin_port()
        subsets = self._subsets()
        start_ids = self._start_ids(srv, subsets)
        writers = {n: ChaosWriter(n, self.paths[n], self.rng.randrange(2 ** 31), cfg.rate, cfg.rotate_every, cfg.rotations)
                   for n in self.names}
        final: dict[str, int] = {}

        def expected(name: str):
            return final.get(name)

        clients = []
        for i in range(cfg.clients):
            # Half follow one source, half several (multiplexed, composite ids).
            subset = subsets[self.rng.randrange(len(self.names))] if i % 2 == 0 or len(subsets) == 1 else \
                subsets[self.rng.randrange(len(self.names), len(subsets))]
            clients.append(ChaosClient(i, lambda: srv.port, list(subset), start_ids[subset],
                                       self.rng.randrange(2 ** 31), expected))
        result = ChaosResult(cfg, {}, clients, writers, 0)
        # The kill moments: spread over the writing time, each followed by a time down.
        kill_at = sorted(self.rng.uniform(0.1, 0.9) * cfg.seconds for _ in range(cfg.restarts))
        try:
            started = time.monotonic()
            for w in writers.values():
                w.t0 = started
                w.start()
            for c in clients:
                c.start()
            for at in kill_at:
                self._sleep_until(started + at, writers)
                result.kills.append(time.monotonic() - started)
                for w in writers.values():
                    w.down_copytruncates = 0
                srv.kill()   # SIGKILL
                down = self.rng.uniform(0.3, 1.5)
                # Some files rotate while tailsse is down (at most one copytruncate per file: more
                # than one between an id and a restart is beyond what README promises).
                for n in self.names:
                    r = self.rng.random()
                    if r < 0.3:
                        writers[n].request("burst")
                    elif r < 0.5:
                        writers[n].request("copytruncate")
                    elif r < 0.7:
                        writers[n].request("rename")
                time.sleep(down)
                srv.start()
                for w in writers.values():
                    w.down_copytruncates = None
                result.restarts += 1
            self._sleep_until(started + cfg.seconds, writers)
            for w in writers.values():
                w.stop.set()
            for n, w in writers.items():
                w.join(30)
                if w.error is not None:
                    raise AssertionError(f"writer {n} failed: {w.error!r}")
                final[n] = len(w.written)
            result.written = {n: writers[n].written for n in self.names}
            caught = time.monotonic()
            deadline = caught + cfg.catch_up_seconds
            self._await_clients(clients, deadline)
            result.catch_up = time.monotonic() - caught
        finally:
            for w in writers.values():
                w.stop.set()
            for c in clients:
                c.stop.set()
            for c in clients:
                c.join(15)
            result.wall = time.monotonic() - t0
        if not result.written:
            result.written = {n: writers[n].written for n in self.names}
        self._check(result)
        return result

    @staticmethod
    def _await_clients(clients, deadline: float, quiet: float = 20.0) -> None:
        """Waits until every client has finished (has every line, or failed), or the deadline
        passes, or no unfinished client has received anything for `quiet` seconds (a lost line
        never arrives: no need to wait for the whole deadline then)."""
        last, since = -1, time.monotonic()
        for c in clients:
            while not c.finished.wait(max(0.0, min(1.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    return
                now = sum(x.progress() for x in clients)
                if now != last:
                    last, since = now, time.monotonic()
                elif time.monotonic() - since > quiet:
                    return

    def _sleep_until(self, when: float, writers) -> None:
        while time.monotonic() < when:
            for n, w in writers.items():
                if w.error is not None:
                    raise AssertionError(f"writer {n} failed: {w.error!r}")
            time.sleep(min(0.2, max(0.0, when - time.monotonic())))

    def _check(self, result: ChaosResult) -> None:
        srv = self.server
        if srv is not None and not srv.running():
            result.failures.append(f"tailsse is not running (exit {srv.proc.returncode})")
        for c in result.clients:
            problems = []
            if c.error:
                problems.append(c.error)
            elif not c.done():
                problems.append("not caught up by the deadline")
            for s in c.sources:
                expected, got = result.written[s], c.received[s]
                if got != expected:
                    problems.append(f"source {s}: " + first_divergence(expected, got, c.ids[s]))
            if problems:
                # The reconnects just before the first divergence (a client's lines so far count
                # every source, so for several sources this is approximate), and the last ones.
                first = min((next((i for i, (a, b) in enumerate(zip(result.written[s], c.received[s])) if a != b),
                                  min(len(result.written[s]), len(c.received[s]))) for s in c.sources), default=0)
                near = [h for h in c.history if h[2] <= first * len(c.sources)][-3:]
                shown = near + [h for h in c.history[-3:] if h not in near]
                recent = "; ".join(f"{t - c.history[0][0]:.2f}s {lid[:90]!r} after {n}"
                                   for t, lid, n in shown) if c.history else "none"
                result.failures.append(
                    f"client {c.index} ({'/events ' if len(c.sources) > 1 else ''}{','.join(c.sources)}; "
                    f"{c.connections} connections, {sum(len(v) for v in c.received.values())} lines): "
                    + "\n  ".join(problems) + f"\n  reconnects before the divergence, and the last: {recent}")
        if result.failures:
            for n, w in result.writers.items():
                result.context.append(f"writer {n} (seconds into the run/lines written/what): " + ", ".join(
                    f"{t:.2f}/{k}/{what}" for t, k, what in w.log))
