"""Starting, stopping and restarting the real tailsse binary, plus small file helpers."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import threading
import time
from pathlib import Path

READY = re.compile(rb"tailsse: listening on https?://([^/\s]+):(\d+)/")


def binary() -> str:
    env = os.environ.get("TAILSSE_BIN")
    if env:
        return env
    root = Path(__file__).resolve().parent.parent
    for kind in ("release", "debug"):
        candidate = root / ".build" / kind / "tailsse"
        if candidate.exists():
            return str(candidate)
    return str(root / ".build" / "release" / "tailsse")


class Server:
    """One tailsse process; `restart()` starts a new one with exactly the same arguments."""

    def __init__(self, files: dict[str, str | os.PathLike], log_dir: Path, *, max_line_bytes: int = 4096,
                 shared_buffer_bytes: int = 1 << 20, heartbeat: float = 1, write_timeout: float = 3,
                 retry: int = 500, extra: list[str] | tuple = (), wrapper: list[str] | tuple = (),
                 cwd: str | os.PathLike | None = None, name: str = "tailsse") -> None:
        self.files = {k: str(v) for k, v in files.items()}
        self.log_path = Path(log_dir) / f"{name}.stderr.log"
        self.wrapper = list(wrapper)
        self.cwd = str(cwd or log_dir)
        self.args = [binary(), "--listen", "127.0.0.1:0"]
        for k, v in self.files.items():
            self.args += ["--file", f"{k}={v}"]
        self.args += ["--heartbeat", str(heartbeat), "--write-timeout", str(write_timeout),
                      "--max-line-bytes", str(max_line_bytes), "--retry", str(retry),
                      "--shared-buffer-bytes", str(shared_buffer_bytes), *extra]
        # Where tailsse remembers the file generations it followed (kept across restarts).
        self.env = {**os.environ, "STATE_DIRECTORY": str(Path(log_dir) / f"{name}.state")}
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.starts = 0
        self.stdout_rest = bytearray()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> "Server":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        log = open(self.log_path, "ab")
        log.write(f"\n==== start #{self.starts + 1}: {' '.join(self.wrapper + self.args)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(self.wrapper + self.args, stdout=subprocess.PIPE, stderr=log,
                                     stdin=subprocess.DEVNULL, cwd=self.cwd, env=self.env)
        log.close()
        self.starts += 1
        fd = self.proc.stdout.fileno()
        seen = bytearray()
        deadline = time.monotonic() + timeout
        while True:
            m = READY.search(seen)
            if m:
                self.port = int(m.group(2))
                self.ready_line = bytes(seen).decode(errors="replace")
                break
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise AssertionError(f"tailsse did not report listening within {timeout}s: {bytes(seen)!r}\n{self.log_tail()}")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    rc = self.proc.wait()
                    raise AssertionError(f"tailsse exited ({rc}) before listening: {bytes(seen)!r}\n{self.log_tail()}")
                seen += chunk
        proc = self.proc
        threading.Thread(target=self._drain, args=(proc,), daemon=True).start()
        return self

    def _drain(self, proc: subprocess.Popen) -> None:
        try:
            while True:
                chunk = proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else proc.stdout.read(4096)
                if not chunk:
                    return
                self.stdout_rest += chunk
        except (OSError, ValueError):
            return

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def target_pid(self) -> int:
        """The pid of tailsse itself (the wrapper's child when run under strace)."""
        if not self.wrapper or Path(self.wrapper[0]).name != "strace":
            return self.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
            except OSError:
                children = []
            if children:
                return int(children[0])
            time.sleep(0.05)
        raise AssertionError("no child of strace found")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Sends `sig` to tailsse and waits for it; returns the exit status (negative: signal)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.target_pid(), sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"tailsse did not exit within {timeout}s of signal {sig}\n{self.log_tail()}")
        return rc

    def pin_port(self) -> None:
        """Makes later starts listen on the port this run got, as a restarted service would."""
        assert self.port is not None
        index = self.args.index("--listen")
        self.args[index + 1] = f"127.0.0.1:{self.port}"

    def restart(self, timeout: float = 60.0) -> "Server":
        rc = self.stop()
        assert rc == 0, f"tailsse exited with {rc} on SIGTERM\n{self.log_tail()}"
        return self.start(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.target_pid(), signal.SIGKILL)
            except (OSError, AssertionError):
                pass
            try:
                self.proc.kill()
            except OSError:
                pass
            self.proc.wait(timeout=10)

    # -- inspection --------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n: int = 40) -> str:
        lines = self.log_text().splitlines()
        return "---- tailsse stderr (tail) ----\n" + "\n".join(lines[-n:])

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.target_pid()}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


# -- files -------------------------------------------------------------------------------------
def append(path: str | os.PathLike, data: bytes | str) -> None:
    """Appends with one write() on an O_APPEND descriptor."""
    if isinstance(data, str):
        data = data.encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)


def wait_closed_by_server(socks, timeout: float = 30.0, between=None) -> tuple[set, float]:
    """Reads `socks` until the server has closed each (EOF or reset) or `timeout` passes; calls
    `between()` after every read round. Returns the sockets still open and the seconds it took."""
    import select as _select
    started = time.monotonic()
    pending = set(socks)
    while pending and time.monotonic() - started < timeout:
        ready, _, _ = _select.select(list(pending), [], [], 1.0)
        for sock in ready:
            try:
                data = sock.recv(4096)
            except ConnectionResetError:
                data = b""
            if not data:
                pending.discard(sock)
        if between:
            between()
    return pending, time.monotonic() - started


def wait_until(predicate, timeout: float = 20.0, what: str = "condition", interval: float = 0.05):
    """Polls predicate (for state that has no event to await) until true or the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
