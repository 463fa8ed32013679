"""--config FILE: the format, errors that name the file and line, and the command line over the file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from http_client import SSEStream, request
from server import append, binary


def run_config(path: Path, *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    """Runs tailsse with a configuration that must be refused: it has to exit by itself."""
    return subprocess.run([binary(), "--config", str(path), *args], capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=path.parent)


@pytest.mark.parametrize("body, line, problem", [
    ("listen = 127.0.0.1:0\nfile = a=a.log\ncolour = blue\n", 3, "unknown key 'colour'"),
    ("# a comment\n\nfile a.log\n", 3, "expected 'key = value'"),
    ("file = a=a.log\nheartbeat = soon\n", 2, "heartbeat must be between 0.1 and 3600 seconds"),
    ("file = a=a.log\nlisten = 127.0.0.1:0\nlisten = 127.0.0.1:1\n", 3, "'listen' is already set on line 2"),
    ("file = a=a.log\nfile = a=b.log\n", 2, "file names the source 'a' a second time"),
    ("file = bad/name=a.log\n", 1, "source name 'bad/name' must be"),
    ("file = a=a.log\nlisten = nowhere\n", 2, "listen must be HOST:PORT"),
    ("file = a=a.log\njournal = maybe\n", 2, "journal must be yes or no"),
    ("file = a=a.log\nretry =\n", 2, "'retry' needs a value"),
])
def test_errors_name_the_file_and_line_and_nothing_starts(tmp_path, body, line, problem):
    conf = tmp_path / "tailsse.conf"
    conf.write_text(body)
    (tmp_path / "a.log").write_text("x\n")
    result = run_config(conf)
    stderr = result.stderr.decode()
    assert result.returncode != 0, stderr
    assert f"{conf}:{line}: " in stderr, stderr
    assert problem in stderr, stderr
    assert b"listening" not in result.stdout


def test_missing_configuration_file_is_named(tmp_path):
    conf = tmp_path / "absent.conf"
    result = run_config(conf)
    assert result.returncode != 0
    assert f"{conf}: cannot read the configuration file" in result.stderr.decode()
    assert b"listening" not in result.stdout


def test_command_line_error_still_names_the_option(tmp_path):
    conf = tmp_path / "tailsse.conf"
    conf.write_text("file = a=a.log\n")
    result = run_config(conf, "--heartbeat", "0")
    assert result.returncode != 0
    assert "--heartbeat must be between 0.1 and 3600 seconds" in result.stderr.decode()


def test_configuration_file_sources_and_options(tailsse, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("one\n")
    (logs / "web.log").write_text("w\n")
    conf = tmp_path / "tailsse.conf"
    # A listen address that cannot be bound: the command line (--listen 127.0.0.1:0) overrides it.
    # Relative paths are relative to the file's directory, whatever the working directory is.
    conf.write_text(
        "# sources\n"
        "file = app = logs/app.log\n".replace("app = ", "app=")
        + "  file=web=" + str(logs / "web.log") + "  \n"
        "listen = 192.0.2.1:1\n"
        "\tretry = 1234\n"
    )
    srv = tailsse({}, extra=["--config", str(conf)], cwd=logs)
    listing = request(srv.port, "/sources").json()
    assert [(s["name"], s["path"]) for s in listing] == [("app", str(logs / "app.log")), ("web", str(logs / "web.log"))]
    with SSEStream(srv.port, "/sources/app?tail=1") as stream:
        stream.wait_ready()
        assert stream.parser.retry == 500, "--retry on the command line overrides the file's 1234"
        append(logs / "app.log", "two\n")
        assert stream.wait_messages(2)[-1].json["text"] == "two"


def test_command_line_source_replaces_the_files_source_of_that_name(tailsse, tmp_path):
    (tmp_path / "old.log").write_text("old\n")
    (tmp_path / "new.log").write_text("new\n")
    conf = tmp_path / "tailsse.conf"
    conf.write_text("file = app=old.log\n")
    srv = tailsse({"app": tmp_path / "new.log"}, extra=["--config", str(conf)])
    assert [(s["name"], s["path"]) for s in request(srv.port, "/sources").json()] == [("app", str(tmp_path / "new.log"))]


def test_example_configuration_is_valid(tailsse, tmp_path):
    example = Path(__file__).resolve().parent.parent / "systemd" / "tailsse.conf"
    (tmp_path / "x.log").write_text("x\n")
    srv = tailsse({"x": tmp_path / "x.log"}, extra=["--config", str(example)])
    assert request(srv.port, "/healthz").status == 200
