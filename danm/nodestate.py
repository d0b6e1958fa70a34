"""Node-local state of the CNI plugin: a node-wide concurrency limit, DEL retry bookkeeping,
tombstones of endpoints that DEL gave up on, and the STATUS cache.

Every danm process is short-lived and many run at once, so all state is in small files that are
replaced atomically (a temporary file, then ``rename`` or ``link``): a reader sees the old or the
new content, never half of it, and a crash leaves at worst a stray ``.tmp`` file.

This module is on the CNI hot path: it imports only os, fcntl, time and errno at module level;
``json`` (which pulls in ``re``) is imported only where tombstones are read or written.
"""

from __future__ import annotations  # annotations name types that are imported for mypy only

import errno
import fcntl
import os
import time

from danm.errors import DanmError

# typing costs milliseconds at import; this module needs it only for mypy.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Final

DIRECTORY_MODE: Final = 0o700
FILE_MODE: Final = 0o600

# Retry sleeps while every slot is busy: short at first (a slot is usually freed within
# milliseconds), growing to a cap so that 100 waiters do not spin on the lock files.
FIRST_SLEEP: Final = 0.002
MAX_SLEEP: Final = 0.05
SLEEP_GROWTH: Final = 1.5

MAX_CONTAINER_ID: Final = 128
CONTAINER_ID_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
)

FAILURE_SUFFIX: Final = ".del-failure"
TOMBSTONE_SUFFIX: Final = ".tombstone.json"
# TombstoneEndpoint's fields in constructor order; a missing one reads as "" (older files).
ENDPOINT_KEYS: Final = ("namespace", "name", "network", "kind", "ip4", "ip6", "interface", "netns")


class SlotTimeout(DanmError):
    """Every node slot stayed busy until the deadline."""

    def __init__(self, directory: str, limit: int, waited: float) -> None:
        noun = "slot" if limit == 1 else "slots"
        super().__init__(
            f"all {limit} danm node {noun} in {directory} stayed busy; gave up after waiting {waited:.3f} s"
        )
        self.directory = directory
        self.limit = limit
        self.waited = waited


# --------------------------------------------------------------------------------------------
# Small file helpers


def ensure_directory(directory: str) -> None:
    """Creates ``directory`` (0700; parents as the umask allows) unless it exists."""
    try:
        os.mkdir(directory, DIRECTORY_MODE)
    except FileExistsError:
        return
    except FileNotFoundError:
        os.makedirs(directory, DIRECTORY_MODE, exist_ok=True)


def unique_temp_path(final_path: str) -> str:
    """A sibling temporary name no other process or thread can pick at the same time."""
    head, tail = os.path.split(final_path)
    return os.path.join(head, f".{tail}.{os.getpid()}.{time.monotonic_ns()}.tmp")


def write_new_file(path: str, data: bytes, sync: bool) -> None:
    """Writes ``data`` to a file that must not exist yet, mode 0600 whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: str, data: bytes, sync: bool) -> None:
    """Atomically replaces ``path`` with ``data`` (temporary file + rename)."""
    temp = unique_temp_path(path)
    try:
        write_new_file(temp, data, sync)
        os.rename(temp, path)
    except BaseException:
        remove_quietly(temp)
        raise


def remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def read_small_file(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


# --------------------------------------------------------------------------------------------
# The node-wide concurrency limit


class NodeSlot:
    """One of ``limit`` node-wide slots, held from ``__enter__`` until ``__exit__``/``close()``.

    The slots are lock files ``slot-0 .. slot-<limit-1>`` in ``directory``; a slot is held by a
    non-blocking exclusive ``flock`` on its file. The kernel drops flock locks with the process,
    so a crashed or killed danm never leaks a slot. ``deadline`` is a ``time.monotonic()`` value.
    A ``limit`` of 0 or less means no limit: entering takes nothing and ``index`` stays -1.
    """

    def __init__(self, directory: str, limit: int, deadline: float) -> None:
        self.directory = directory
        self.limit = limit
        self.deadline = deadline
        self.index = -1
        self.waited = 0.0
        self.held_fd = -1
        # fds of the slot files opened so far, by slot index (-1: not opened yet); kept open
        # across retries so that waiting costs one flock per slot, not an open+close.
        self.slot_fds: list[int] = []

    def __enter__(self) -> NodeSlot:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def acquire(self) -> None:
        if self.limit <= 0 or self.held_fd >= 0:
            return
        started = time.monotonic()
        ensure_directory(self.directory)
        self.slot_fds = [-1] * self.limit
        first = os.getpid() % self.limit  # spreads processes over the slots
        jitter_state = ((os.getpid() << 20) ^ time.monotonic_ns() | 1) & 0xFFFFFFFFFFFFFFFF
        sleep = FIRST_SLEEP
        try:
            while True:
                for step in range(self.limit):
                    index = (first + step) % self.limit
                    if self.try_slot(index):
                        self.index = index
                        self.waited = time.monotonic() - started
                        return
                now = time.monotonic()
                if now >= self.deadline:
                    raise SlotTimeout(self.directory, self.limit, now - started)
                # xorshift jitter in [0.5, 1.0) x sleep: no `random` import on the hot path,
                # and waiters that started together drift apart.
                jitter_state ^= (jitter_state << 13) & 0xFFFFFFFFFFFFFFFF
                jitter_state ^= jitter_state >> 7
                jitter_state ^= (jitter_state << 17) & 0xFFFFFFFFFFFFFFFF
                fraction = 0.5 + (jitter_state % 1024) / 2048.0
                time.sleep(min(sleep * fraction, max(self.deadline - now, 0.0)))
                sleep = min(sleep * SLEEP_GROWTH, MAX_SLEEP)
        finally:
            self.close_unheld()

    def try_slot(self, index: int) -> bool:
        fd = self.slot_fds[index]
        if fd < 0:
            path = os.path.join(self.directory, f"slot-{index}")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
            self.slot_fds[index] = fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as busy:
            if busy.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EINTR):
                return False
            raise
        self.held_fd = fd
        return True

    def close_unheld(self) -> None:
        for fd in self.slot_fds:
            if fd >= 0 and fd != self.held_fd:
                os.close(fd)
        self.slot_fds = []

    def close(self) -> None:
        """Releases the slot (closing the file drops the lock); safe to call twice."""
        self.close_unheld()
        if self.held_fd >= 0:
            fd = self.held_fd
            self.held_fd = -1
            os.close(fd)


# --------------------------------------------------------------------------------------------
# DEL retry bookkeeping and tombstones


def check_container_id(container_id: str) -> None:
    """Container ids become file names: only [A-Za-z0-9_.-], 1..128 characters."""
    if not 1 <= len(container_id) <= MAX_CONTAINER_ID or not CONTAINER_ID_CHARS.issuperset(container_id):
        raise ValueError(
            f"container id {container_id!r} is invalid: it must be 1 to {MAX_CONTAINER_ID} "
            "characters of A-Z, a-z, 0-9, '_', '.' and '-'"
        )


def failure_path(directory: str, container_id: str) -> str:
    check_container_id(container_id)
    return os.path.join(directory, container_id + FAILURE_SUFFIX)


def first_failure(directory: str, container_id: str, now: float) -> float:
    """Records ``now`` (wall clock) as the first DEL failure of the container unless one is
    recorded, and returns the recorded time.

    The record is written whole to a temporary file and then ``link``-ed into place, which
    fails if the record exists: of concurrent callers exactly one wins and all return its time.
    """
    path = failure_path(directory, container_id)
    ensure_directory(directory)
    temp = unique_temp_path(path)
    write_new_file(temp, repr(float(now)).encode(), sync=False)
    try:
        for _attempt in range(3):
            try:
                os.link(temp, path)
                return float(now)
            except FileExistsError:
                pass
            try:
                return float(read_small_file(path).decode("ascii"))
            except FileNotFoundError:
                continue  # cleared between our link and our read: try to record ours again
            except (ValueError, UnicodeDecodeError):
                # A record that does not parse (a damaged disk, a hand edit) counts from now.
                os.rename(temp, path)
                return float(now)
        return float(now)
    finally:
        remove_quietly(temp)


def clear_failure(directory: str, container_id: str) -> None:
    """Forgets the first DEL failure of the container; nothing recorded is fine."""
    remove_quietly(failure_path(directory, container_id))


class TombstoneEndpoint:
    """A DanmEp that still held addresses when DEL gave up on its container. ``interface`` and
    ``netns`` (optional) let a DEL that cannot reach the API server still find the link."""

    def __init__(
        self,
        namespace: str,
        name: str,
        network: str,
        kind: str,
        ip4: str = "",
        ip6: str = "",
        interface: str = "",
        netns: str = "",
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.network = network
        self.kind = kind
        self.ip4 = ip4
        self.ip6 = ip6
        self.interface = interface
        self.netns = netns

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TombstoneEndpoint):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return f"TombstoneEndpoint({self.as_dict()!r})"

    def as_dict(self) -> dict[str, str]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "network": self.network,
            "kind": self.kind,
            "ip4": self.ip4,
            "ip6": self.ip6,
            "interface": self.interface,
            "netns": self.netns,
        }


class Tombstone:
    """What DEL left behind for one container: when, why, and the endpoints not freed."""

    def __init__(
        self, container_id: str, time: float, reason: str, endpoints: list[TombstoneEndpoint]
    ) -> None:
        self.container_id = container_id
        self.time = time
        self.reason = reason
        self.endpoints = endpoints

    def __repr__(self) -> str:
        return (
            f"Tombstone(container_id={self.container_id!r}, time={self.time!r}, "
            f"reason={self.reason!r}, endpoints={self.endpoints!r})"
        )


def tombstone_path(directory: str, container_id: str) -> str:
    check_container_id(container_id)
    return os.path.join(directory, container_id + TOMBSTONE_SUFFIX)


def write_tombstone(
    directory: str, container_id: str, endpoints: list[TombstoneEndpoint], reason: str, now: float
) -> str:
    """Writes (or overwrites) the container's tombstone, durably, and returns its path."""
    import json

    path = tombstone_path(directory, container_id)
    ensure_directory(directory)
    document = {
        "containerID": container_id,
        "time": float(now),
        "reason": reason,
        "endpoints": [endpoint.as_dict() for endpoint in endpoints],
    }
    replace_file(path, json.dumps(document).encode() + b"\n", sync=True)
    return path


def parse_tombstone(raw: bytes) -> Tombstone:
    """A tombstone from its file; ValueError (or a subclass) if it is not one."""
    import json

    document = json.loads(raw)
    if not isinstance(document, dict):
        raise ValueError("a tombstone is a JSON object")
    container_id = document["containerID"]
    moment = document["time"]
    reason = document["reason"]
    listed = document["endpoints"]
    if not isinstance(container_id, str) or not isinstance(reason, str):
        raise ValueError("containerID and reason must be strings")
    if isinstance(moment, bool) or not isinstance(moment, (int, float)):
        raise ValueError("time must be a number")
    check_container_id(container_id)
    if not isinstance(listed, list):
        raise ValueError("endpoints must be a list")
    endpoints: list[TombstoneEndpoint] = []
    for item in listed:
        if not isinstance(item, dict):
            raise ValueError("an endpoint must be an object")
        values: list[str] = []
        for key in ENDPOINT_KEYS:
            value = item.get(key, "")
            if not isinstance(value, str):
                raise ValueError(f"endpoint field {key} must be a string")
            values.append(value)
        endpoints.append(TombstoneEndpoint(*values))
    return Tombstone(container_id, float(moment), reason, endpoints)


def read_tombstones(directory: str) -> tuple[list[Tombstone], list[str]]:
    """All tombstones in ``directory`` (oldest first) and the paths of files that are not
    readable tombstones; those are reported, never raised, so one bad file cannot stop the
    clean-up of the others. A missing directory holds no tombstones."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return [], []
    tombstones: list[Tombstone] = []
    unreadable: list[str] = []
    for name in sorted(names):
        if not name.endswith(TOMBSTONE_SUFFIX):  # also skips temporary files (".tmp")
            continue
        path = os.path.join(directory, name)
        try:
            raw = read_small_file(path)
        except FileNotFoundError:
            continue  # removed since the listing
        except OSError:
            unreadable.append(path)
            continue
        try:
            tombstones.append(parse_tombstone(raw))
        except (ValueError, KeyError, TypeError):
            unreadable.append(path)
    tombstones.sort(key=tombstone_order)
    return tombstones, unreadable


def read_tombstone(directory: str, container_id: str) -> list[TombstoneEndpoint]:
    """The endpoints in one container's tombstone; none when it has none or it is unreadable
    (callers use it as a best-effort note, e.g. what ADD attached on this node)."""
    try:
        raw = read_small_file(tombstone_path(directory, container_id))
        return parse_tombstone(raw).endpoints
    except (OSError, ValueError, KeyError, TypeError):
        return []


def tombstone_order(tombstone: Tombstone) -> tuple[float, str]:
    return tombstone.time, tombstone.container_id


def remove_tombstone(directory: str, container_id: str) -> None:
    """Removes the container's tombstone; none there is fine."""
    remove_quietly(tombstone_path(directory, container_id))


# --------------------------------------------------------------------------------------------
# The STATUS cache
#
# Three lines: the wall-clock time of the check, 1 or 0, the reason. Not JSON: STATUS runs
# often, and reading this must not import json.


def cached_status(path: str, max_age: float, now: float) -> tuple[bool, str] | None:
    """The stored STATUS answer if it is at most ``max_age`` seconds old at ``now`` (wall
    clock); None if it is missing, stale, from the future (the clock went back) or corrupt."""
    try:
        text = read_small_file(path).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    parts = text.split("\n", 2)
    if len(parts) != 3 or parts[1] not in ("0", "1"):
        return None
    try:
        stored = float(parts[0])
    except ValueError:
        return None
    age = now - stored
    if not 0.0 <= age <= max_age:  # also false for nan
        return None
    return parts[1] == "1", parts[2]


def store_status(path: str, ok: bool, reason: str, now: float) -> None:
    """Stores a STATUS answer checked at ``now`` (wall clock), atomically."""
    parent = os.path.dirname(path)
    if parent:
        ensure_directory(parent)
    data = f"{float(now)!r}\n{'1' if ok else '0'}\n{reason}".encode()
    replace_file(path, data, sync=False)
