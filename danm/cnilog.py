"""The CNI plugin's log: one JSON object per line, to a size-rotated file and to stderr.

The plugin's stdout carries only the CNI result, so logs go to stderr and to a file (by default
the original's ``/var/log/danm.log``, mode 0640). Many danm processes append to the same file at
once: each line is one ``write`` on an ``O_APPEND`` descriptor, which the kernel never interleaves
with another process's line on a local file system. Rotation is serialised by an ``flock`` on
``<path>.lock``, and a process that finds its file was rotated by another follows the new file.

Logging must never fail a CNI operation: when the file cannot be opened or written (read-only
file system, missing directory, full disk) the log says so once on stderr and goes on there.

This module is on the CNI hot path, so it imports no ``logging``, ``json`` (which loads ``re``)
or ``datetime``: lines are encoded by the small JSON writer below.
"""

from __future__ import annotations  # annotations name types that are imported for mypy only

import _thread
import fcntl
import math
import os
import sys
import time

# typing costs milliseconds at import; this module needs it only for mypy.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

DEFAULT_LOG_FILE: Final = "/var/log/danm.log"
LOG_MODE: Final = 0o640
LOCK_MODE: Final = 0o600

LEVELS: Final = {"debug": 10, "info": 20, "warning": 30, "error": 40}
DEBUG: Final = 10
INFO: Final = 20
WARNING: Final = 30
ERROR: Final = 40

# The keys every line starts with; a context or event field of the same name gets a trailing
# "_" so that no line has a duplicate key.
RESERVED_KEYS: Final = frozenset(("time", "level", "event", "msg"))

# Deeper containers are written as their str(): guards against self-referencing values.
MAX_DEPTH: Final = 8

# str.translate table for JSON strings: quote, backslash, the control characters, and the
# other characters that Python's str.splitlines() (and JavaScript) treat as line breaks, so that
# a line read back by such a reader is still one line.
ESCAPES: Final = {
    **{code: f"\\u{code:04x}" for code in range(0x20)},
    ord('"'): '\\"',
    ord("\\"): "\\\\",
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    ord("\b"): "\\b",
    ord("\f"): "\\f",
    0x85: "\\u0085",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


# --------------------------------------------------------------------------------------------
# The line format (pure)


def quote(text: str) -> str:
    """``text`` as a JSON string. Lone surrogates stay as they are here and become ``\\udcXX``
    escapes when the line is encoded with ``backslashreplace``."""
    return '"' + text.translate(ESCAPES) + '"'


def encode_value(value: object, depth: int) -> str:
    """``value`` as JSON; values of other than JSON types are written as their ``str()``."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, int):
        return int.__repr__(value)  # an IntEnum's str() would be its name
    if isinstance(value, float):
        if math.isfinite(value):
            return float.__repr__(value)
        return quote(float.__repr__(value))  # JSON has no nan or inf
    if depth < MAX_DEPTH:
        if isinstance(value, (list, tuple)):
            return "[" + ",".join([encode_value(item, depth + 1) for item in value]) + "]"
        if isinstance(value, dict):
            members = [quote(str(key)) + ":" + encode_value(item, depth + 1) for key, item in value.items()]
            return "{" + ",".join(members) + "}"
    return quote(str(value))


def utc_timestamp(time_ns: int) -> str:
    """RFC 3339 UTC with microseconds, e.g. ``2024-05-01T12:34:56.123456Z``."""
    seconds, micros = divmod(time_ns // 1000, 1_000_000)
    moment = time.gmtime(seconds)
    return (
        f"{moment.tm_year:04d}-{moment.tm_mon:02d}-{moment.tm_mday:02d}T"
        f"{moment.tm_hour:02d}:{moment.tm_min:02d}:{moment.tm_sec:02d}.{micros:06d}Z"
    )


def field_key(name: str) -> str:
    return name + "_" if name in RESERVED_KEYS else name


def format_line(
    time_ns: int, level: str, event: str, message: str, context: dict[str, str], fields: dict[str, object]
) -> str:
    """One log line: time, level, event, msg, the context fields, then the event's fields (an
    event field replaces a context field of the same name)."""
    parts = [
        '{"time":"',
        utc_timestamp(time_ns),
        '","level":"',
        level,
        '","event":',
        quote(event),
        ',"msg":',
        quote(message),
    ]
    for key, text in context.items():
        if key not in fields:
            parts.append("," + quote(key) + ":" + quote(text))
    for key, value in fields.items():
        parts.append("," + quote(field_key(key)) + ":" + encode_value(value, 0))
    parts.append("}\n")
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# Files


def open_log_file(path: str) -> int:
    """An append-only descriptor of ``path``; a file this creates gets mode 0640 exactly
    (``fchmod`` after creation, so the umask neither widens nor narrows it)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
    for _attempt in range(3):
        try:
            return os.open(path, flags)
        except FileNotFoundError:
            pass
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, LOG_MODE)
        except FileExistsError:
            continue  # another process created it between our two opens
        try:
            os.fchmod(fd, LOG_MODE)
        except OSError:
            os.close(fd)
            raise
        return fd
    return os.open(path, flags | os.O_CREAT, LOG_MODE)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def same_file(first: os.stat_result, second: os.stat_result) -> bool:
    return first.st_ino == second.st_ino and first.st_dev == second.st_dev


class CniLog:
    """The log of one danm process. ``path`` "" logs to stderr only.

    ``set_context`` fields (pod, container, command) go on every later line. Lines below
    ``level`` are dropped. The file is opened on the first line; ``close()`` closes it (a later
    line opens it again). Safe to use from several threads.
    """

    def __init__(
        self,
        path: str = DEFAULT_LOG_FILE,
        max_bytes: int = 10 * 1024 * 1024,
        backups: int = 3,
        stderr: bool = True,
        level: str = "info",
    ) -> None:
        threshold = LEVELS.get(level)
        if threshold is None:
            raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.stderr = stderr
        self.threshold = threshold
        self.context: dict[str, str] = {}
        self.fd = -1
        # Set when the file failed: from then on every line goes to stderr, whatever `stderr`.
        self.file_failed = path == ""
        self.lock = _thread.allocate_lock()

    def set_context(self, **fields: str) -> None:
        """Adds (or replaces) fields written on every later line."""
        for key, value in fields.items():
            self.context[field_key(key)] = value

    def debug(self, event: str, message: str = "", **fields: object) -> None:
        if self.threshold <= DEBUG:
            self.emit("debug", event, message, fields)

    def info(self, event: str, message: str = "", **fields: object) -> None:
        if self.threshold <= INFO:
            self.emit("info", event, message, fields)

    def warning(self, event: str, message: str = "", **fields: object) -> None:
        if self.threshold <= WARNING:
            self.emit("warning", event, message, fields)

    def error(self, event: str, message: str = "", **fields: object) -> None:
        if self.threshold <= ERROR:
            self.emit("error", event, message, fields)

    def emit(self, level: str, event: str, message: str, fields: dict[str, object]) -> None:
        line = format_line(time.time_ns(), level, event, message, self.context, fields)
        with self.lock:
            if not self.file_failed:
                self.write_file(line.encode("utf-8", "backslashreplace"))
            if self.stderr or self.file_failed:
                write_stderr(line)

    def close(self) -> None:
        with self.lock:
            self.close_file()

    # Everything below runs with self.lock held.

    def close_file(self) -> None:
        if self.fd >= 0:
            fd = self.fd
            self.fd = -1
            try:
                os.close(fd)
            except OSError:
                pass

    def write_file(self, data: bytes) -> None:
        try:
            if self.fd < 0:
                self.fd = open_log_file(self.path)
            if self.max_bytes > 0 and os.fstat(self.fd).st_size >= self.max_bytes:
                self.rotate()
            write_all(self.fd, data)
        except OSError as failure:
            self.give_up_file(failure)

    def give_up_file(self, failure: OSError) -> None:
        """Switches to stderr only, saying once why."""
        self.close_file()
        self.file_failed = True
        note = format_line(
            time.time_ns(),
            "warning",
            "log_file_unavailable",
            f"cannot write the log file {self.path} ({failure}); logging to stderr only",
            self.context,
            {"path": self.path},
        )
        write_stderr(note)

    def rotate(self) -> None:
        """Under the rotation lock: follows a rotation another process did; if the file is
        still too big, shifts ``path.(n-1)`` to ``path.n`` ... ``path`` to ``path.1``."""
        lock_fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, LOCK_MODE)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            try:
                on_disk = os.stat(self.path)
            except FileNotFoundError:
                on_disk = None
            if on_disk is None or not same_file(on_disk, os.fstat(self.fd)):
                self.close_file()
                self.fd = open_log_file(self.path)
                if os.fstat(self.fd).st_size < self.max_bytes:
                    return
            self.shift_backups()
            self.close_file()
            self.fd = open_log_file(self.path)
        finally:
            os.close(lock_fd)  # drops the flock

    def shift_backups(self) -> None:
        if self.backups <= 0:
            os.unlink(self.path)
            return
        for number in range(self.backups - 1, 0, -1):
            try:
                os.rename(f"{self.path}.{number}", f"{self.path}.{number + 1}")
            except FileNotFoundError:
                pass
        os.rename(self.path, self.path + ".1")


def write_stderr(line: str) -> None:
    """Best effort: a closed or missing stderr must not fail the CNI operation either."""
    try:
        sys.stderr.write(line)
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass
