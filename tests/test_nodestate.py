"""Node-local state: the node-wide slot limit (with real processes), DEL retry records,
tombstones and the STATUS cache."""

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from danm import nodestate
from danm.errors import DanmError
from danm.nodestate import NodeSlot, SlotTimeout, TombstoneEndpoint

# Takes a slot, records "<enter> <exit> <index>" (time.monotonic(), system-wide) into its own
# file while holding it. argv: directory limit start_at deadline_s hold_s record_path.
# The start time lines all processes up so that they contend for the slots together.
HOLDER = """
import sys, time
from danm.nodestate import NodeSlot, SlotTimeout
directory, limit, start_at, deadline_s, hold, record = sys.argv[1:]
while time.monotonic() < float(start_at):
    time.sleep(0.005)
try:
    with NodeSlot(directory, int(limit), time.monotonic() + float(deadline_s)) as slot:
        entered = time.monotonic()
        with open(record + ".entered", "w") as marker:
            marker.write(str(slot.index))
        time.sleep(float(hold))
        left = time.monotonic()
        with open(record, "w") as out:
            out.write(f"{entered} {left} {slot.index} {slot.waited}")
except SlotTimeout as timeout:
    print(timeout, file=sys.stderr)
    sys.exit(3)
"""


def start_holder(
    directory: Path, limit: int, record: Path, hold: float, start_at: float = 0.0, deadline_s: float = 60.0
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-c", HOLDER, str(directory), str(limit), str(start_at), str(deadline_s)]
    return subprocess.Popen([*argv, str(hold), str(record)], stderr=subprocess.PIPE)


def wait_for(path: Path, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {seconds} s")
        time.sleep(0.01)


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    # at equal times, exits (-1) sort before entries (+1): touching intervals do not overlap
    current = peak = 0
    for _, change in events:
        current += change
        peak = max(peak, current)
    return peak


# --------------------------------------------------------------------------------------------
# NodeSlot


def test_six_processes_share_two_slots(tmp_path: Path) -> None:
    slots = tmp_path / "slots" / "nested"
    start_at = time.monotonic() + 1.5  # after every interpreter has started
    records = [tmp_path / f"record-{number}" for number in range(6)]
    processes = [start_holder(slots, 2, record, 0.3, start_at) for record in records]
    for process in processes:
        _, errors = process.communicate(timeout=60)
        assert process.returncode == 0, errors.decode()
    intervals: list[tuple[float, float]] = []
    indices: set[int] = set()
    for record in records:
        entered, left, index, waited = record.read_text().split()
        intervals.append((float(entered), float(left)))
        indices.add(int(index))
        assert float(waited) >= 0.0
    assert max_overlap(intervals) == 2
    assert indices == {0, 1}
    # six holds of 0.3 s through two slots take at least three rounds
    assert max(end for _, end in intervals) - min(start for start, _ in intervals) >= 0.9 - 0.01
    assert stat.S_IMODE(slots.stat().st_mode) == 0o700
    assert sorted(path.name for path in slots.iterdir()) == ["slot-0", "slot-1"]
    for path in slots.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_waiter_times_out_while_every_slot_is_held(tmp_path: Path) -> None:
    with NodeSlot(str(tmp_path), 1, time.monotonic() + 5) as held:
        assert held.index == 0
        waiter = NodeSlot(str(tmp_path), 1, time.monotonic() + 0.2)
        started = time.monotonic()
        with pytest.raises(SlotTimeout) as raised:
            waiter.__enter__()
        assert 0.2 <= time.monotonic() - started < 2.0
        assert isinstance(raised.value, DanmError)
        message = str(raised.value)
        assert "all 1 danm node slot" in message and str(tmp_path) in message
        assert raised.value.limit == 1 and raised.value.waited >= 0.2
    # released on exit: the next one gets it at once
    with NodeSlot(str(tmp_path), 1, time.monotonic()) as again:
        assert again.index == 0 and again.waited < 0.1


def test_waiter_in_another_process_times_out(tmp_path: Path) -> None:
    with NodeSlot(str(tmp_path), 1, time.monotonic() + 5):
        waiter = start_holder(tmp_path, 1, tmp_path / "record", 0.0, deadline_s=0.3)
        _, errors = waiter.communicate(timeout=30)
    assert waiter.returncode == 3
    assert "all 1 danm node slot" in errors.decode() and "gave up after waiting" in errors.decode()


def test_a_killed_holder_frees_its_slot(tmp_path: Path) -> None:
    record = tmp_path / "record"
    holder = start_holder(tmp_path, 1, record, 60.0)
    try:
        wait_for(Path(str(record) + ".entered"))
        with pytest.raises(SlotTimeout):
            NodeSlot(str(tmp_path), 1, time.monotonic() + 0.1).__enter__()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        with NodeSlot(str(tmp_path), 1, time.monotonic() + 5) as freed:
            assert freed.index == 0 and freed.waited < 1.0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        assert holder.stderr is not None
        holder.stderr.close()


def test_a_waiter_gets_the_slot_when_the_holder_leaves(tmp_path: Path) -> None:
    holder = NodeSlot(str(tmp_path), 1, time.monotonic() + 1)
    holder.__enter__()
    releaser = threading.Timer(0.15, holder.close)
    releaser.start()
    try:
        with NodeSlot(str(tmp_path), 1, time.monotonic() + 5) as waiter:
            assert waiter.index == 0
            assert 0.1 <= waiter.waited < 2.0
    finally:
        releaser.join()
        holder.close()


def test_slots_are_spread_and_exhausted_in_process(tmp_path: Path) -> None:
    held = [NodeSlot(str(tmp_path), 3, time.monotonic()).__enter__() for _ in range(3)]
    try:
        assert sorted(slot.index for slot in held) == [0, 1, 2]
        # the first slot tried is pid % limit
        assert held[0].index == os.getpid() % 3
        with pytest.raises(SlotTimeout):
            NodeSlot(str(tmp_path), 3, time.monotonic()).__enter__()
    finally:
        for slot in held:
            slot.close()
            slot.close()  # twice is fine


def test_no_limit_takes_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "never-made"
    for limit in (0, -1):
        with NodeSlot(str(directory), limit, time.monotonic() - 10) as slot:
            assert slot.index == -1 and slot.waited == 0.0
    assert not directory.exists()


# --------------------------------------------------------------------------------------------
# DEL retry records


def test_first_failure_is_recorded_once(tmp_path: Path) -> None:
    directory = str(tmp_path / "del")
    assert nodestate.first_failure(directory, "abc123", 1000.25) == 1000.25
    assert nodestate.first_failure(directory, "abc123", 2000.0) == 1000.25
    assert nodestate.first_failure(directory, "other", 3000.5) == 3000.5
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    nodestate.clear_failure(directory, "abc123")
    nodestate.clear_failure(directory, "abc123")  # missing is fine
    assert nodestate.first_failure(directory, "abc123", 4000.0) == 4000.0
    assert not [name for name in os.listdir(directory) if name.endswith(".tmp")]


def test_first_failure_is_atomic_across_processes(tmp_path: Path) -> None:
    directory = str(tmp_path)
    start_at = time.monotonic() + 1.0
    script = (
        "import sys, time\n"
        "from danm.nodestate import first_failure\n"
        "while time.monotonic() < float(sys.argv[2]): pass\n"
        "print(first_failure(sys.argv[1], 'racy', float(sys.argv[3])))\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, directory, str(start_at), str(100.0 + number)],
            stdout=subprocess.PIPE,
        )
        for number in range(6)
    ]
    answers = {process.communicate(timeout=60)[0].decode().strip() for process in processes}
    assert len(answers) == 1
    (answer,) = answers
    assert 100.0 <= float(answer) <= 105.0
    assert sorted(os.listdir(directory)) == ["racy.del-failure"]


def test_a_corrupt_failure_record_counts_from_now(tmp_path: Path) -> None:
    (tmp_path / "bad.del-failure").write_text("not a time")
    assert nodestate.first_failure(str(tmp_path), "bad", 55.5) == 55.5
    assert nodestate.first_failure(str(tmp_path), "bad", 66.0) == 55.5


@pytest.mark.parametrize("container_id", ["", "../etc/passwd", "a/b", "x" * 129, "sp ace", "ümlaut", "a\x00b"])
def test_container_ids_are_validated(tmp_path: Path, container_id: str) -> None:
    for call in (
        lambda: nodestate.first_failure(str(tmp_path), container_id, 1.0),
        lambda: nodestate.clear_failure(str(tmp_path), container_id),
        lambda: nodestate.write_tombstone(str(tmp_path), container_id, [], "x", 1.0),
        lambda: nodestate.remove_tombstone(str(tmp_path), container_id),
    ):
        with pytest.raises(ValueError, match="container id"):
            call()
    assert list(tmp_path.iterdir()) == []


def test_container_ids_at_the_limits_are_accepted(tmp_path: Path) -> None:
    for container_id in ("a", "x" * 128, "A-Z_a.z-09", ".."):
        assert nodestate.first_failure(str(tmp_path), container_id, 7.0) == 7.0
        nodestate.clear_failure(str(tmp_path), container_id)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# Tombstones


def endpoints() -> list[TombstoneEndpoint]:
    return [
        TombstoneEndpoint("default", "pod-a-ep1", "internal", "DanmNet", "10.0.0.5/24", ""),
        TombstoneEndpoint(
            "default", "pod-a-ep2", "ext", "ClusterNetwork", "", "fd00::5/64", interface="ext0", netns="/proc/7/ns/net"
        ),
    ]


def test_tombstones_round_trip(tmp_path: Path) -> None:
    directory = str(tmp_path / "tombstones")
    path = nodestate.write_tombstone(directory, "c2", endpoints(), "API server unreachable", 200.5)
    nodestate.write_tombstone(directory, "c1", endpoints()[:1], "first", 100.0)
    assert path == os.path.join(directory, "c2.tombstone.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    document = json.loads(Path(path).read_text())
    assert document["containerID"] == "c2" and document["reason"] == "API server unreachable"
    assert document["endpoints"][1]["interface"] == "ext0" and document["endpoints"][1]["netns"] == "/proc/7/ns/net"

    tombstones, unreadable = nodestate.read_tombstones(directory)
    assert unreadable == []
    assert [tombstone.container_id for tombstone in tombstones] == ["c1", "c2"]  # oldest first
    assert tombstones[1].time == 200.5 and tombstones[1].reason == "API server unreachable"
    assert tombstones[1].endpoints == endpoints()
    assert tombstones[0].endpoints == endpoints()[:1]

    assert nodestate.read_tombstone(directory, "c2") == endpoints()
    assert nodestate.read_tombstone(directory, "missing") == []
    assert nodestate.read_tombstone(str(tmp_path / "nowhere"), "c2") == []

    nodestate.write_tombstone(directory, "c2", [], "overwritten", 300.0)
    tombstones, _ = nodestate.read_tombstones(directory)
    assert [(tombstone.container_id, tombstone.reason) for tombstone in tombstones] == [
        ("c1", "first"),
        ("c2", "overwritten"),
    ]
    nodestate.remove_tombstone(directory, "c2")
    nodestate.remove_tombstone(directory, "c2")  # missing is fine
    tombstones, _ = nodestate.read_tombstones(directory)
    assert [tombstone.container_id for tombstone in tombstones] == ["c1"]
    assert sorted(os.listdir(directory)) == ["c1.tombstone.json"]


def test_corrupt_tombstones_are_reported_not_raised(tmp_path: Path) -> None:
    nodestate.write_tombstone(str(tmp_path), "good", endpoints(), "ok", 1.0)
    bad = {
        "truncated": '{"containerID": "truncated", "ti',
        "notobject": "[1, 2]",
        "missing": '{"containerID": "missing", "time": 1}',
        "badtime": '{"containerID": "badtime", "time": "x", "reason": "", "endpoints": []}',
        "badendpoint": '{"containerID": "badendpoint", "time": 1, "reason": "", "endpoints": [{"ip4": 4}]}',
        "badid": '{"containerID": "../x", "time": 1, "reason": "", "endpoints": []}',
        "binary": "\udcff",
    }
    for name, text in bad.items():
        (tmp_path / f"{name}.tombstone.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    (tmp_path / "unrelated.txt").write_text("ignored")
    (tmp_path / ".good.tombstone.json.1.2.tmp").write_text("{")  # a writer's leftover
    tombstones, unreadable = nodestate.read_tombstones(str(tmp_path))
    assert [tombstone.container_id for tombstone in tombstones] == ["good"]
    assert sorted(unreadable) == sorted(str(tmp_path / f"{name}.tombstone.json") for name in bad)
    for name in bad:
        assert nodestate.read_tombstone(str(tmp_path), name) == []


def test_endpoint_fields_missing_from_a_file_read_as_empty(tmp_path: Path) -> None:
    (tmp_path / "old.tombstone.json").write_text(
        '{"containerID": "old", "time": 5, "reason": "r", "endpoints": [{"namespace": "ns", "name": "ep"}]}'
    )
    (tombstone,), unreadable = nodestate.read_tombstones(str(tmp_path))
    assert unreadable == [] and tombstone.time == 5.0
    assert tombstone.endpoints == [TombstoneEndpoint("ns", "ep", "", "")]


def test_no_tombstone_directory_means_no_tombstones(tmp_path: Path) -> None:
    assert nodestate.read_tombstones(str(tmp_path / "missing")) == ([], [])


# --------------------------------------------------------------------------------------------
# STATUS cache


def test_status_cache_fresh_stale_and_corrupt(tmp_path: Path) -> None:
    path = str(tmp_path / "run" / "status")
    assert nodestate.cached_status(path, 10.0, 100.0) is None
    nodestate.store_status(path, False, "API server unreachable: timed out\nsecond line", 100.0)
    assert nodestate.cached_status(path, 10.0, 105.0) == (False, "API server unreachable: timed out\nsecond line")
    assert nodestate.cached_status(path, 10.0, 110.0) == (False, "API server unreachable: timed out\nsecond line")
    assert nodestate.cached_status(path, 10.0, 110.01) is None  # stale
    assert nodestate.cached_status(path, 10.0, 99.0) is None  # stored in the future: clock went back
    nodestate.store_status(path, True, "", 200.0)
    assert nodestate.cached_status(path, 5.0, 201.0) == (True, "")
    for corrupt in (b"", b"200.0\n", b"200.0\n2\nx", b"soon\n1\nx", b"\xff\xfe", b"nan\n1\nx"):
        Path(path).write_bytes(corrupt)
        assert nodestate.cached_status(path, 5.0, 201.0) is None, corrupt
    assert [name for name in os.listdir(tmp_path / "run")] == ["status"]
