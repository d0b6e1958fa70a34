"""The CNI log: JSON lines, file mode, levels, rotation, concurrent writers, stderr fallback."""

import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from enum import IntEnum
from pathlib import Path
from typing import Any

import pytest

from danm.cnilog import DEFAULT_LOG_FILE, CniLog, format_line

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class Color(IntEnum):
    RED = 1


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_default_path_is_the_originals() -> None:
    assert DEFAULT_LOG_FILE == "/var/log/danm.log"


def test_lines_are_json_with_fields_in_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "danm.log"
    log = CniLog(str(path))
    log.set_context(pod="default/pod-a", container="abc123", command="ADD")
    before = time.time()
    log.info("interface_added", "eth1 is up", network="internal", interface="eth1", elapsed_ms=12.5)
    log.error(
        "delegate_failed",
        'quote " backslash \\ newline \n tab \t nul \x00 \u2028 é',
        code=104,
        ok=False,
        nothing=None,
        path=Path("/x"),
        addresses=["10.0.0.1/24", 6],
        detail={"a": (1, 2.0), 3: b"raw"},
        color=Color.RED,
        ratio=float("nan"),
        msg="collides",
        pod="overridden",
    )
    log.close()
    after = time.time()

    first, second = read_lines(path)
    assert list(first) == ["time", "level", "event", "msg", "pod", "container", "command", "network", "interface", "elapsed_ms"]
    assert first["level"] == "info" and first["event"] == "interface_added" and first["msg"] == "eth1 is up"
    assert (first["pod"], first["container"], first["command"]) == ("default/pod-a", "abc123", "ADD")
    assert first["elapsed_ms"] == 12.5
    assert TIMESTAMP.match(first["time"])
    from datetime import datetime

    logged = datetime.strptime(first["time"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    assert before - 0.001 <= logged <= after + 0.001

    assert second["level"] == "error"
    assert second["msg"] == 'quote " backslash \\ newline \n tab \t nul \x00 \u2028 é'
    assert second["code"] == 104 and second["ok"] is False and second["nothing"] is None
    assert second["path"] == "/x" and second["addresses"] == ["10.0.0.1/24", 6]
    assert second["detail"] == {"a": [1, 2.0], "3": "b'raw'"}
    assert second["color"] == 1 and second["ratio"] == "nan"
    assert second["msg_"] == "collides"  # a field named like a fixed key gets a trailing _
    assert second["pod"] == "overridden"  # the event's field wins over the context's
    assert list(second)[:6] == ["time", "level", "event", "msg", "container", "command"]

    # the same lines went to stderr
    assert [json.loads(line) for line in capsys.readouterr().err.splitlines()] == [first, second]


def test_awkward_text_stays_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "danm.log"
    log = CniLog(str(path), stderr=False)
    nested: list[object] = []
    nested.append(nested)  # a cycle is written as its str() past the depth limit
    log.warning("odd", "lone surrogate \udcff", value=nested, inf=float("-inf"), big=10**30)
    log.close()
    (line,) = read_lines(path)
    assert line["msg"] == "lone surrogate \udcff"
    assert line["inf"] == "-inf" and line["big"] == 10**30
    depth = line["value"]
    while isinstance(depth, list):
        (depth,) = depth
    assert isinstance(depth, str)


def test_format_line_is_pure() -> None:
    line = format_line(1_700_000_000_123_456_789, "debug", "e", "", {"a": "b"}, {"n": 1})
    assert line == '{"time":"2023-11-14T22:13:20.123456Z","level":"debug","event":"e","msg":"","a":"b","n":1}\n'


@pytest.mark.usefixtures("umask")
@pytest.mark.parametrize("mask", [0o000, 0o077])
def test_a_new_file_is_0640_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    path = tmp_path / "danm.log"
    os.umask(mask)
    log = CniLog(str(path), stderr=False)
    assert not path.exists()  # opened lazily
    log.info("first")
    log.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.usefixtures("umask")
def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "danm.log"
    path.write_text("")
    path.chmod(0o600)
    log = CniLog(str(path), stderr=False)
    log.info("appended")
    log.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(read_lines(path)) == 1


def test_levels_below_the_threshold_are_dropped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "danm.log"
    log = CniLog(str(path), level="warning")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    log.close()
    assert [line["event"] for line in read_lines(path)] == ["w", "e"]
    assert [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()] == ["w", "e"]
    debug_path = tmp_path / "debug.log"
    verbose = CniLog(str(debug_path), stderr=False, level="debug")
    verbose.debug("d")
    verbose.close()
    assert [line["level"] for line in read_lines(debug_path)] == ["debug"]
    with pytest.raises(ValueError, match="log level 'verbose'"):
        CniLog(str(path), level="verbose")


def test_rotation_thresholds_and_backups(tmp_path: Path) -> None:
    path = tmp_path / "danm.log"
    log = CniLog(str(path), max_bytes=1000, backups=2, stderr=False)
    sizes: list[int] = []
    for number in range(40):
        log.info("line", "x" * 40, number=number)
        sizes.append(path.stat().st_size)
        backups = sorted(name for name in os.listdir(tmp_path) if name.startswith("danm.log."))
        assert set(backups) <= {"danm.log.1", "danm.log.2", "danm.log.lock"}
    log.close()
    line_size = len((tmp_path / "danm.log").read_text().splitlines()[0]) + 1
    # a file grows past max_bytes by at most one line, then the next line starts a new file
    assert max(sizes) < 1000 + line_size
    for name in ("danm.log.1", "danm.log.2"):
        rotated = tmp_path / name
        assert 1000 <= rotated.stat().st_size < 1000 + line_size
        assert stat.S_IMODE(rotated.stat().st_mode) == 0o640
    numbers = [line["number"] for name in ("danm.log.2", "danm.log.1", "danm.log") for line in read_lines(tmp_path / name)]
    assert numbers == list(range(numbers[0], 40))  # contiguous; the oldest rotated away
    assert numbers[0] > 0


def test_no_backups_truncates(tmp_path: Path) -> None:
    path = tmp_path / "danm.log"
    log = CniLog(str(path), max_bytes=300, backups=0, stderr=False)
    for number in range(20):
        log.info("line", number=number)
    log.close()
    assert sorted(os.listdir(tmp_path)) == ["danm.log", "danm.log.lock"]
    assert path.stat().st_size < 300 + 200


def test_a_writer_follows_a_rotation_done_by_another(tmp_path: Path) -> None:
    path = tmp_path / "danm.log"
    early = CniLog(str(path), max_bytes=500, backups=5, stderr=False)
    other = CniLog(str(path), max_bytes=500, backups=5, stderr=False)
    early.info("early", "x" * 600)  # now over the limit
    other.info("rotating", "y")  # rotates: early's descriptor now points at danm.log.1
    early.info("follows")  # sees danm.log.1 is big, finds danm.log is new, does not rotate again
    early.close()
    other.close()
    assert [line["event"] for line in read_lines(tmp_path / "danm.log.1")] == ["early"]
    assert [line["event"] for line in read_lines(path)] == ["rotating", "follows"]
    assert not (tmp_path / "danm.log.2").exists()


WRITER = """
import sys
from danm.cnilog import CniLog
path, writer, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
log = CniLog(path, max_bytes=16 * 1024, backups=1000, stderr=False)
log.set_context(container="c" * 64, command="ADD")
for number in range(count):
    log.info("concurrent", "padding " * (number % 7), writer=writer, number=number)
log.close()
"""


def test_concurrent_writers_never_tear_or_lose_lines(tmp_path: Path) -> None:
    path = tmp_path / "danm.log"
    writers, count = 8, 500
    processes = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(writer), str(count)], stderr=subprocess.PIPE)
        for writer in range(writers)
    ]
    for process in processes:
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors.decode()
        assert errors == b""
    files = [name for name in os.listdir(tmp_path) if name != "danm.log.lock"]
    assert len(files) > 10  # it did rotate, many times
    seen: list[tuple[str, int]] = []
    for name in files:
        for line in read_lines(tmp_path / name):  # any torn or interleaved line fails to parse
            assert line["event"] == "concurrent" and line["container"] == "c" * 64
            seen.append((line["writer"], line["number"]))
    assert len(seen) == writers * count
    assert set(seen) == {(str(writer), number) for writer in range(writers) for number in range(count)}


def test_unwritable_paths_fall_back_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path in (str(tmp_path / "missing-dir" / "danm.log"), str(tmp_path), "/dev/full"):
        log = CniLog(path, stderr=False)
        log.set_context(container="abc")
        log.info("first", "one")
        log.info("second", "two")
        log.close()
        log.info("third", "three")  # still stderr only, no second note
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        assert [line["event"] for line in lines] == ["log_file_unavailable", "first", "second", "third"]
        note = lines[0]
        assert note["level"] == "warning" and note["path"] == path and path in note["msg"]
        assert note["container"] == "abc"
    assert os.listdir(tmp_path) == []


def test_no_file_when_path_is_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = CniLog("", stderr=False)
    log.info("only_stderr")
    log.close()
    assert [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()] == ["only_stderr"]


def test_reopens_after_close(tmp_path: Path) -> None:
    path = tmp_path / "danm.log"
    log = CniLog(str(path), stderr=False)
    log.info("a")
    log.close()
    log.close()
    log.info("b")
    log.close()
    assert [line["event"] for line in read_lines(path)] == ["a", "b"]
