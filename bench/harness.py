"""The benchmark harness of tailsse: run subjects side by side, summarize, report.

A benchmark *case* is a function (see ``run.py``) that prepares its inputs and calls
``Bench.compare`` once per comparison: a baseline subject and the subjects measured against it,
each a function returning one run's figures as a dict. ``compare`` runs them interleaved
(baseline, tailsse, baseline, tailsse, ...) so that slow phases of the machine hit all of them,
and keeps min/median/max of every figure over the runs and the ratio of the medians to the
baseline's. Nothing here knows about a particular case.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import resource
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A run that could not be measured (server did not start, client failed, wrong results)."""


class BenchSkip(Exception):
    """A case that cannot run on this machine at all (e.g. no mount namespaces): reported, not failed."""


# ------------------------------------------------------------------------------------------------
# Figures


@dataclass
class Metric:
    """One figure a subject reports: the key in its result dict and how to show it."""

    key: str
    label: str
    unit: str = ""
    higher_is_better: bool = True
    scale: float = 1.0  # shown value = raw value * scale
    digits: int = 0

    def show(self, value: float | None) -> str:
        if value is None:
            return "–"
        v = value * self.scale
        if self.digits == 0 and abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:,.{self.digits}f}"


@dataclass
class Target:
    """A goal for one subject's median: ``metric`` at least (or at most) ``value``.

    With ``relative_to`` (another subject of the same comparison), ``value`` is a factor: the
    subject's median at least (or at most) ``value`` × that subject's median.
    """

    subject: str
    metric: str
    value: float
    at_least: bool = True
    text: str = ""
    relative_to: str | None = None

    def met(self, median: float) -> bool:
        return median >= self.value if self.at_least else median <= self.value


@dataclass
class Summary:
    values: list[float]

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def max(self) -> float:
        return max(self.values)


@dataclass
class SubjectResult:
    name: str
    runs: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self, key: str) -> Summary | None:
        values = [r[key] for r in self.runs if isinstance(r.get(key), (int, float)) and r[key] >= 0]
        return Summary(values) if values else None


@dataclass
class Comparison:
    case: str
    title: str
    description: str
    baseline: str
    primary: Metric
    metrics: list[Metric]
    subjects: list[SubjectResult]
    targets: list[Target]
    notes: list[str] = field(default_factory=list)

    def subject(self, name: str) -> SubjectResult:
        return next(s for s in self.subjects if s.name == name)

    def ratio(self, name: str, metric: Metric | None = None) -> float | None:
        metric = metric or self.primary
        mine = self.subject(name).summary(metric.key)
        base = self.subject(self.baseline).summary(metric.key)
        if not mine or not base or base.median == 0:
            return None
        return mine.median / base.median

    def verdicts(self) -> list[tuple[Target, float | None, bool]]:
        """(target, the figure it is judged on, met): a median, or for a relative target the ratio."""
        out = []
        for target in self.targets:
            summary = self.subject(target.subject).summary(target.metric)
            value = summary.median if summary else None
            if target.relative_to and value is not None:
                other = self.subject(target.relative_to).summary(target.metric)
                value = value / other.median if other and other.median else None
            out.append((target, value, value is not None and target.met(value)))
        return out

    def verdict_text(self, target: Target, value: float | None) -> str:
        if target.relative_to:
            mine = self.subject(target.subject).summary(target.metric)
            other = self.subject(target.relative_to).summary(target.metric)
            metric = next((m for m in self.metrics if m.key == target.metric), None)
            if value is None or not metric or not mine or not other:
                return "ratio –"
            return (f"ratio {value:.2f}: median {metric.show(mine.median)} vs {metric.show(other.median)}"
                    f"{' ' + metric.unit if metric.unit else ''}")
        metric = next((m for m in self.metrics if m.key == target.metric), None)
        if metric is None:
            return f"median {value}"
        return f"median {metric.show(value)}{' ' + metric.unit if metric.unit else ''}"

    @property
    def errors(self) -> list[str]:
        return [f"{s.name}: {e}" for s in self.subjects for e in s.errors]


# ------------------------------------------------------------------------------------------------
# Processes under test


class Server:
    """One tailsse process on 127.0.0.1:<ephemeral port>, for a ``with`` block."""

    LISTENING = re.compile(r"listening on http://([^/\s]+)/")

    def __init__(self, binary: str, files: dict[str, str | Path], workdir: Path, extra: list[str] | None = None,
                 wrapper: list[str] | None = None, env: dict[str, str] | None = None):
        self.binary = binary
        self.env = {**os.environ, **env} if env else None
        self.wrapper = wrapper or []  # a command that execs the server, e.g. nsenter (same pid)
        self.files = files
        self.log_path = workdir / f"tailsse-{time.monotonic_ns()}.log"
        self.extra = extra or []
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._cpu0 = 0.0

    def __enter__(self) -> "Server":
        # The benchmarks' thousands of clients all come from loopback: lift the per-client limit.
        args = [*self.wrapper, self.binary, "--listen", "127.0.0.1:0", "--heartbeat", "15", "--max-connections-per-client", "1000000"]
        for name, path in self.files.items():
            args += ["--file", f"{name}={path}"]
        args += self.extra
        self._log = open(self.log_path, "wb")
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log, cwd=str(REPO_DIR),
                                     preexec_fn=raise_nofile, env=self.env)
        ready = threading.Event()
        address: list[str] = []

        def drain() -> None:
            assert self.proc and self.proc.stdout
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace")
                match = self.LISTENING.search(line)
                if match and not address:
                    self.t_listening = time.monotonic()
                    address.append(match.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(30) or not address:
            self.__exit__(None, None, None)
            raise BenchError(f"tailsse did not start: {self.log_tail()}")
        self.port = int(address[0].rsplit(":", 1)[1])
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise BenchError(f"tailsse never became healthy: {self.log_tail()}")
            time.sleep(0.002)
        self.t_healthy = time.monotonic()
        self._cpu0 = self.cpu_seconds()
        return self

    def __exit__(self, *exc) -> None:
        # How long SIGTERM takes to end it (graceful shutdown with streams open) is worth watching.
        self.shutdown_s = -1.0
        if self.proc and self.proc.poll() is None:
            t0 = time.monotonic()
            self.proc.terminate()
            try:
                self.proc.wait(10)
                self.shutdown_s = time.monotonic() - t0
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "_log"):
            self._log.close()

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server so far."""
        assert self.proc
        return pid_cpu_seconds(self.proc.pid)

    def cpu_since_start(self) -> float:
        """CPU used since the server became healthy (start-up excluded)."""
        return self.cpu_seconds() - self._cpu0

    def rss_kib(self) -> int:
        assert self.proc
        return rss_kib(self.proc.pid)

    def rss_peak_mib(self) -> float:
        assert self.proc
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return -1.0

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return bool(self.proc) and self.proc.poll() is None


class Gatewayd:
    """systemd-journal-gatewayd serving a journal directory on 127.0.0.1:<free port>, for a ``with`` block.

    It has no port option: ``systemd-socket-activate -l ADDR`` binds the socket and execs gatewayd
    with it (same pid). The first request (``/machine``) waits until it answers.
    """

    BINARY = "/lib/systemd/systemd-journal-gatewayd"

    def __init__(self, directory: Path | None, workdir: Path, wrapper: list[str] | None = None):
        self.directory = directory  # None: the local journal (of the namespace `wrapper` enters)
        self.wrapper = wrapper or []
        self.log_path = workdir / f"gatewayd-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._cpu0 = 0.0

    def __enter__(self) -> "Gatewayd":
        self.port = free_port()
        self._log = open(self.log_path, "wb")
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(
            [*self.wrapper, "systemd-socket-activate", "-l", f"127.0.0.1:{self.port}", self.BINARY,
             *(["-D", str(self.directory)] if self.directory else [])],
            stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=raise_nofile)
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/machine", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise BenchError(f"gatewayd did not start: {self.log_path.read_text(errors='replace')[-500:]}")
            time.sleep(0.002)
        self.t_healthy = time.monotonic()
        self._cpu0 = pid_cpu_seconds(self.proc.pid)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if hasattr(self, "_log"):
            self._log.close()

    def cpu_since_start(self) -> float:
        assert self.proc
        return pid_cpu_seconds(self.proc.pid) - self._cpu0

    def rss_kib(self) -> int:
        assert self.proc
        return rss_kib(self.proc.pid)

    def log_tail(self, chars: int = 500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return bool(self.proc) and self.proc.poll() is None


class Websocketd:
    """websocketd (Debian) on 127.0.0.1:<free port> running ``command`` once per WebSocket client.

    Its memory and CPU are those of its whole process tree (websocketd plus one child per client).
    Its log (stderr: connections, and the children's stderr) goes to a file.
    """

    def __init__(self, command: list[str], workdir: Path):
        self.command = command
        self.log_path = workdir / f"websocketd-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._cpu0 = 0.0

    def __enter__(self) -> "Websocketd":
        self.port = free_port()
        self._log = open(self.log_path, "wb")
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(["websocketd", "--address=127.0.0.1", f"--port={self.port}", *self.command],
                                     stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=raise_nofile)
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise BenchError(f"websocketd did not start: {self.log_tail()}")
            time.sleep(0.002)
        self.t_healthy = time.monotonic()
        self._cpu0 = tree_cpu_seconds(self.proc.pid)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            children = tree_pids(self.proc.pid)[1:]
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            for pid in children:  # websocketd ends its children itself; make sure
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
        if hasattr(self, "_log"):
            self._log.close()

    def cpu_since_start(self) -> float:
        """CPU of websocketd and its live children since start (children that ended are not counted)."""
        assert self.proc
        return tree_cpu_seconds(self.proc.pid) - self._cpu0

    def rss_kib(self) -> int:
        assert self.proc
        return sum(rss_kib(pid) for pid in tree_pids(self.proc.pid))

    def pss_kib(self) -> int:
        assert self.proc
        return sum(pss_kib(pid) for pid in tree_pids(self.proc.pid))

    def log_tail(self, chars: int = 500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return bool(self.proc) and self.proc.poll() is None


class RssSampler:
    """Samples a memory figure (a function returning KiB) every `interval` seconds in a thread."""

    def __init__(self, sample: Callable[[], int], interval: float = 1.0):
        self.sample, self.interval = sample, interval
        self.values: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            try:
                self.values.append(self.sample())
            except (OSError, ValueError):
                pass
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class JournalNamespace:
    """A real, standalone systemd-journald in a private mount namespace, for a ``with`` block.

    ``unshare -m --propagation private`` runs a script that bind-mounts private directories over
    /run (and /var/log/journal when it exists) and a journald.conf over /etc/systemd/journald.conf
    (Storage=volatile, ReadKMsg=no, no rate limit), then starts /lib/systemd/systemd-journald.
    Processes started with ``enter([...])`` (nsenter into journald's mount namespace) log into it
    (systemd-cat, logger) and read it as the local journal (/run/log/journal: journalctl,
    tailsse --journal). The network is the host's: clients outside connect over loopback.
    The namespace and its mounts vanish when its last process exits; nothing is written on the host
    outside the work directory.
    """

    SCRIPT = r"""#!/bin/bash
set -eu
D=$1
export LIBMOUNT_UTAB=$D/utab        # else mount(8) writes /run/mount/utab on the host
mkdir -p "$D/run" "$D/varlog" "$D/empty"
mount --bind "$D/run" /run
if [ -d /var/log/journal ]; then mount --bind "$D/varlog" /var/log/journal; fi
for d in /etc/systemd/journald.conf.d /usr/lib/systemd/journald.conf.d /usr/local/lib/systemd/journald.conf.d; do
    if [ -d "$d" ]; then mount --bind "$D/empty" "$d"; fi
done
mount --bind "$D/journald.conf" /etc/systemd/journald.conf
if [ -e /etc/machine-id ] && [ ! -s /etc/machine-id ]; then   # journald needs a machine id
    tr -d - < /proc/sys/kernel/random/uuid > "$D/machine-id"
    mount --bind "$D/machine-id" /etc/machine-id
fi
mkdir -p /run/systemd/journal
/lib/systemd/systemd-journald &
JPID=$!
for _ in $(seq 1 300); do
    [ -S /run/systemd/journal/stdout ] && break
    kill -0 "$JPID" 2>/dev/null || { echo "journald exited" >&2; exit 1; }
    sleep 0.02
done
[ -S /run/systemd/journal/stdout ] || { echo "journald created no sockets in 6 s" >&2; kill "$JPID"; exit 1; }
echo "ready $JPID"
wait "$JPID"
"""

    CONF = """[Journal]
Storage=volatile
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
RateLimitIntervalSec=0
RateLimitBurst=0
"""

    def __init__(self, workdir: Path):
        self.dir = workdir / f"journald-ns-{time.monotonic_ns()}"
        self.proc: subprocess.Popen | None = None
        self.journald_pid = 0

    def __enter__(self) -> "JournalNamespace":
        self.dir.mkdir(parents=True)
        script = self.dir / "ns.sh"
        script.write_text(self.SCRIPT)
        (self.dir / "journald.conf").write_text(self.CONF)
        self._log = open(self.dir / "ns.log", "wb")
        self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "bash", str(script), str(self.dir)],
                                     stdout=subprocess.PIPE, stderr=self._log)
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(15)
        match = re.match(rb"ready (\d+)", line[0]) if line else None
        if not match:
            self.__exit__(None, None, None)
            log = (self.dir / "ns.log").read_text(errors="replace").strip()[-500:]
            raise BenchError(f"no journald in a private mount namespace: {log or 'no output'}")
        self.journald_pid = int(match.group(1))
        return self

    def enter(self, argv: list[str]) -> list[str]:
        """argv, run in the namespace (nsenter execs it: same pid)."""
        return ["nsenter", "-t", str(self.journald_pid), "-m", "--", *argv]

    def journald_cpu(self) -> float:
        try:
            return pid_cpu_seconds(self.journald_pid)
        except OSError:
            return 0.0

    def __exit__(self, *exc) -> None:
        if self.journald_pid:
            try:
                os.kill(self.journald_pid, 15)
            except ProcessLookupError:
                pass
        if self.proc:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                for pid in (self.journald_pid, self.proc.pid):
                    try:
                        if pid:
                            os.kill(pid, 9)
                    except ProcessLookupError:
                        pass
                self.proc.wait()
            if self.proc.stdout:
                self.proc.stdout.close()
        if hasattr(self, "_log"):
            self._log.close()


# ------------------------------------------------------------------------------------------------
# The harness


class Bench:
    def __init__(self, binary: str, smoke: bool, runs: int | None, workdir: Path, verbose: bool = True):
        self.binary = binary
        self.smoke = smoke
        self.runs_override = runs
        self.workdir = workdir
        self.verbose = verbose
        self.comparisons: list[Comparison] = []
        self.skipped: list[tuple[str, str]] = []  # (case, why)
        self.priority = "default"
        self.started = _dt.datetime.now(_dt.timezone.utc)
        self.loadavg_start = os.getloadavg()
        self.sseload = self._compile_sseload()

    # --- tools ----------------------------------------------------------------------------------

    def log(self, message: str) -> None:
        if self.verbose:
            print(message, flush=True)

    def _compile_sseload(self) -> str:
        return self.compile_tool("sseload.c", "-pthread")

    def compile_tool(self, source_name: str, *flags: str) -> str:
        """Compiles bench/SOURCE with gcc -O2 into the work directory; returns the binary's path."""
        source = BENCH_DIR / source_name
        out = self.workdir / source.stem
        cmd = ["gcc", "-O2", "-Wall", "-o", str(out), str(source), *flags]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise BenchError(f"cannot compile {source}:\n{result.stderr}")
        return str(out)

    def run_sseload(self, mode: str, *args: str, command: list[str] | None = None, timeout: float = 300) -> dict:
        """Runs the C load client and returns its JSON result."""
        argv = [self.sseload, mode, *args]
        if command:
            argv += ["--", *command]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"sseload {mode} took more than {timeout:.0f} s") from exc
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise BenchError(f"sseload {mode} exited {result.returncode} with no result: {result.stderr.strip()[-2000:]}")
        data = json.loads(lines[-1])
        stderr = result.stderr.strip()
        if stderr:
            data["stderr"] = stderr[-2000:]
        return data

    def run_sseload_phased(self, mode: str, *args: str, on_phase: Callable[[str], None],
                           command: list[str] | None = None, timeout: float = 300) -> dict:
        """Runs the load client like run_sseload, calling on_phase(WORD) (in a thread) for each `#WORD`
        line it prints (`#idle` once every follower is connected and idle, `#live` when lines start)."""
        argv = [self.sseload, mode, *args, *(["--", *command] if command else [])]
        err_path = self.workdir / f"sseload-{time.monotonic_ns()}.err"
        with open(err_path, "w+b") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True, preexec_fn=raise_nofile)
            out: list[str] = []
            callbacks: list[threading.Thread] = []
            timer = threading.Timer(timeout, proc.kill)
            timer.start()
            try:
                assert proc.stdout
                for line in proc.stdout:
                    if line.startswith("#"):
                        t = threading.Thread(target=on_phase, args=(line[1:].split()[0],), daemon=True)
                        t.start()
                        callbacks.append(t)
                    else:
                        out.append(line)
                proc.wait()
            finally:
                timer.cancel()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                for t in callbacks:
                    t.join(60)
            err.seek(0)
            stderr = err.read().decode(errors="replace").strip()
        err_path.unlink()
        lines = [line for line in out if line.startswith("{")]
        if not lines:
            raise BenchError(f"sseload {mode} exited {proc.returncode} with no result: {stderr[-2000:]}")
        data = json.loads(lines[-1])
        if stderr:
            data["stderr"] = stderr[-2000:]
        return data

    def server(self, files: dict[str, str | Path], extra: list[str] | None = None,
               wrapper: list[str] | None = None, push: bool = True) -> Server:
        """A tailsse with the push fan-out (the default); `push=False`: TAILSSE_LIVE_PUSH=off, every client
        reads the live end in its own task, to compare with in the same run."""
        return Server(self.binary, files, self.workdir, extra, wrapper, env={"TAILSSE_LIVE_PUSH": "on" if push else "off"})

    def runs(self, full: int, smoke: int = 1) -> int:
        if self.runs_override:
            return self.runs_override
        return smoke if self.smoke else full

    # --- measuring ------------------------------------------------------------------------------

    def compare(
        self,
        case: str,
        title: str,
        description: str,
        subjects: dict[str, Callable[[], dict]],
        baseline: str,
        primary: Metric,
        metrics: list[Metric] | None = None,
        targets: list[Target] | None = None,
        runs: int = 3,
        check: Callable[[dict], str | None] | None = None,
    ) -> Comparison:
        """Runs every subject `runs` times, interleaved, and records the figures.

        A subject returns one run's figures; ``check`` returns why a run's result is wrong (or
        None); a run that raises or fails the check is recorded as an error, not as a figure.
        """
        metrics = [*(metrics or []), Metric("other_cores", "other load", "cores", higher_is_better=False, digits=2)]
        results = {name: SubjectResult(name) for name in subjects}
        order = list(subjects)
        self.log(f"\n== {case}: {title} ({runs} run{'s' if runs != 1 else ''} each)")
        for run in range(runs):
            # Alternate who goes first, so neither always runs right after the other.
            for name in order if run % 2 == 0 else list(reversed(order)):
                try:
                    busy0, t0 = machine_busy_seconds(), time.monotonic()
                    figures = subjects[name]()
                    busy, wall = machine_busy_seconds() - busy0, time.monotonic() - t0
                    # CPU the machine spent on anything but the measured processes (the server or the
                    # peer, and the load client), per second: other sessions, builds, the harness.
                    # aux_cpu_s: helpers a case starts for every subject alike (journald, systemd-cat).
                    own = figures.get("cpu_s", 0) + figures.get("client_cpu_s", 0) + figures.get("aux_cpu_s", 0)
                    figures["other_cores"] = max(0.0, (busy - own) / wall) if wall > 0 else -1
                    problem = check(figures) if check else None
                except BenchError as exc:
                    figures, problem = {}, str(exc)
                if problem:
                    results[name].errors.append(f"run {run + 1}: {problem}")
                    self.log(f"  {name:<28} run {run + 1}: ERROR {problem}")
                    continue
                results[name].runs.append(figures)
                shown = "  ".join(f"{m.label}={m.show(figures.get(m.key))}{m.unit and ' ' + m.unit}"
                                  for m in [primary, *(metrics or [])] if m.key in figures)
                self.log(f"  {name:<28} run {run + 1}: {shown}")
        comparison = Comparison(case, title, description, baseline, primary, [primary, *(metrics or [])],
                                [results[n] for n in order], targets or [])
        self.comparisons.append(comparison)
        self._print_summary(comparison)
        return comparison

    def _print_summary(self, c: Comparison) -> None:
        for s in c.subjects:
            summary = s.summary(c.primary.key)
            if not summary:
                self.log(f"  -> {s.name}: no valid run")
                continue
            ratio = c.ratio(s.name)
            ratio_text = f"  ratio to baseline {ratio:.3f}" if ratio is not None and s.name != c.baseline else ""
            self.log(f"  -> {s.name}: median {c.primary.show(summary.median)} {c.primary.unit} "
                     f"(min {c.primary.show(summary.min)}, max {c.primary.show(summary.max)}){ratio_text}")
        for target, value, met in c.verdicts():
            self.log(f"  -> target {target.text}: {'met' if met else 'MISSED'} ({c.verdict_text(target, value)})")

    # --- reporting ------------------------------------------------------------------------------

    @property
    def errors(self) -> list[str]:
        return [f"{c.case}: {e}" for c in self.comparisons for e in c.errors]

    def machine(self) -> dict[str, str]:
        cpu = "unknown"
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        mem = ""
        try:
            kib = int(Path("/proc/meminfo").read_text().split()[1])
            mem = f"{kib / 1024 / 1024:.0f} GiB"
        except (OSError, ValueError, IndexError):
            pass
        virt = subprocess.run(["systemd-detect-virt"], capture_output=True, text=True).stdout.strip() \
            if _which("systemd-detect-virt") else ""
        return {
            "nproc": str(os.cpu_count()),
            "cpu": cpu,
            "memory": mem,
            "kernel": platform.release(),
            "virtualization": virt or "unknown",
            "os": _os_release(),
        }

    def revision(self) -> str:
        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(REPO_DIR), *args], capture_output=True, text=True).stdout.strip()

        head = git("rev-parse", "--short=12", "HEAD") or "unknown"
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "Sources", "Package.swift")
        return head + (" (Sources/ modified)" if dirty else "")

    def binary_info(self) -> str:
        path = Path(self.binary)
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            built = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        except OSError:
            return str(path)
        shown = path.resolve().as_posix().replace(str(REPO_DIR) + "/", "")
        return f"`{shown}`, built {built}, sha256 {digest}"

    def markdown(self, command: str) -> str:
        m = self.machine()
        when = self.started.strftime("%Y-%m-%d %H:%M UTC")
        out = [f"### {when} — tailsse {self.revision()}{' — smoke' if self.smoke else ''}", ""]
        out.append(f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']}, kernel {m['kernel']}, "
                   f"{m['os']}, virtualization: {m['virtualization']}")
        out.append(f"- Command: `{command}`")
        out.append(f"- Binary: {self.binary_info()}")
        out.append(f"- Priority: {self.priority}; the live writer thread runs SCHED_FIFO")
        load = self.loadavg_start
        out.append(f"- Load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
                   f"duration {(_dt.datetime.now(_dt.timezone.utc) - self.started).total_seconds():.0f} s")
        out.append("")
        for case, why in self.skipped:
            out.append(f"#### {case}: skipped")
            out.append("")
            out.append(f"- {why}")
            out.append("")
        for c in self.comparisons:
            runs = max((len(s.runs) + len(s.errors)) for s in c.subjects)
            out.append(f"#### {c.case}: {c.title}")
            out.append("")
            out.append(c.description + f" {runs} run{'s' if runs != 1 else ''} per subject, interleaved; "
                       "min / **median** / max.")
            out.append("")
            header = "| subject | " + " | ".join(f"{m.label}{' (' + m.unit + ')' if m.unit else ''}" for m in c.metrics)
            better = "higher" if c.primary.higher_is_better else "lower"
            header += f" | {c.primary.label}: median ÷ baseline's ({better} is better) |"
            out.append(header)
            out.append("|" + "---|" * (len(c.metrics) + 2))
            for s in c.subjects:
                cells = []
                for metric in c.metrics:
                    summary = s.summary(metric.key)
                    if summary is None:
                        cells.append("–")
                    elif len(summary.values) == 1:
                        cells.append(f"**{metric.show(summary.median)}**")
                    else:
                        cells.append(f"{metric.show(summary.min)} / **{metric.show(summary.median)}** / {metric.show(summary.max)}")
                ratio = c.ratio(s.name)
                ratio_cell = "baseline" if s.name == c.baseline else (f"{ratio:.3f}" if ratio is not None else "–")
                name = s.name + (f" ({len(s.errors)} failed runs)" if s.errors else "")
                out.append(f"| {name} | " + " | ".join(cells) + f" | {ratio_cell} |")
            out.append("")
            for target, value, met in c.verdicts():
                out.append(f"- Target {target.text}: **{'met' if met else 'missed'}** ({c.verdict_text(target, value)}).")
            for note in c.notes:
                out.append(f"- {note}")
            for error in c.errors:
                out.append(f"- Error: {error}")
            out.append("")
        return "\n".join(out)

    def write_json(self, path: Path, command: str) -> None:
        data = {
            "started": self.started.isoformat(),
            "command": command,
            "machine": self.machine(),
            "revision": self.revision(),
            "binary": self.binary_info(),
            "smoke": self.smoke,
            "comparisons": [
                {
                    "case": c.case,
                    "title": c.title,
                    "baseline": c.baseline,
                    "primary": c.primary.key,
                    "subjects": {s.name: {"runs": s.runs, "errors": s.errors} for s in c.subjects},
                }
                for c in self.comparisons
            ],
        }
        path.write_text(json.dumps(data, indent=1))


def pid_cpu_seconds(pid: int, reaped_children: bool = False) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat); with reaped_children, plus that of
    its children that ended and were waited for (cutime, cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


NOFILE = 65536


def raise_nofile() -> None:
    """preexec_fn: RLIMIT_NOFILE soft and hard to NOFILE (root), else soft to the hard limit.

    10,000 SSE clients need 10,000 descriptors in the client and in the server; Debian's default soft
    limit is 1,024 (systemd gives services 1,024 too unless LimitNOFILE= says otherwise).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, NOFILE), max(hard, NOFILE)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def rss_kib(pid: int) -> int:
    """Resident set size of a process now (VmRSS), KiB; 0 when it is gone."""
    try:
        return _status_kib(pid, "VmRSS:")
    except OSError:
        return 0


def pss_kib(pid: int) -> int:
    """Proportional set size (shared pages divided among their users), KiB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pids(pid: int) -> list[int]:
    """pid and all its descendants (from /proc/PID/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                try:
                    todo.extend(int(c) for c in (task / "children").read_text().split())
                except OSError:
                    pass
        except OSError:
            pass
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process, its live descendants and the children it reaped."""
    total = 0.0
    for p in tree_pids(pid):
        try:
            total += pid_cpu_seconds(p, reaped_children=p == pid)
        except (OSError, IndexError):
            pass
    return total


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (for servers without a port-0 option)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    values = [int(v) for v in fields]
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def _which(name: str) -> bool:
    return any(os.access(os.path.join(d, name), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep))


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def command_line() -> str:
    """How this invocation can be repeated, for the report."""
    via = os.environ.get("BENCH_VIA")
    args = " ".join(shlex.quote(a) for a in sys.argv[1:])
    direct = f"TAILSSE_BIN={os.environ.get('TAILSSE_BIN', '?')} {Path(sys.executable).as_posix()} bench/run.py {args}".strip()
    try:
        direct = direct.replace(str(REPO_DIR) + "/", "")
    except ValueError:
        pass
    return f"{via}  # i.e. {direct}" if via else direct


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tailsse-bench-"))
