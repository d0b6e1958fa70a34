"""scripts/kernel-test, the user-mode Linux runner of tests/kernel, judged from the host.

Each case boots a guest on a fixture module of tests/kernel_selftest and checks the runner's
exit status and its one-line reason: a failing test, a selection without tests, a skipped test
(beside a passing one), a timeout and a guest that dies mid-run all fail the run; a passing
selection exits 0. After every run no process of the guest's process group and no run
directory may remain, and no linux.uml process may outlive the module. The boots are slow
(~3 s each), so the cases run two at a time, once per module, and the tests read the results.

The last two tests check the collection mechanism on the host: a plain `pytest tests` does
not collect tests/kernel, and running tests/kernel outside the guest fails.
"""

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RUNNER = REPO / "scripts" / "kernel-test"
SELFTEST = "tests/kernel_selftest"
BOOT_LINE = re.compile(r"kernel-test: booting \S+ \(pid (\d+), run dir (\S+)\)")


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


CASES = {
    "pass": Case((f"{SELFTEST}/selftest_pass.py",)),
    "fail": Case((f"{SELFTEST}/selftest_fail.py",)),
    "empty": Case((f"{SELFTEST}/selftest_empty.py",)),
    "skip": Case((f"{SELFTEST}/selftest_pass.py", f"{SELFTEST}/selftest_skip.py")),
    "timeout": Case((f"{SELFTEST}/selftest_hang.py",), (("DANM_KERNEL_TIMEOUT", "5"),)),
    "crash": Case((f"{SELFTEST}/selftest_crash.py",)),
}


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    uml_pid: int
    rundir: Path

    def reasons(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "kernel-test: FAILED:" in line]


def uml_processes() -> set[int]:
    """linux.uml processes of this machine, zombies included."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "stat").read_text().split(" (", 1)[1].startswith("linux.uml)"):
                    found.add(int(entry.name))
            except (OSError, IndexError):
                continue
    return found


def process_group(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[2]) == pgid or int(entry.name) == pgid:
                members.append(int(entry.name))
    return members


def run_runner(case: Case) -> Run:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DANM_KERNEL")}
    env.pop("DANM_IN_KERNEL_VM", None)
    env.update(case.env)
    # The runner's default interpreter is the one running it: this virtualenv's.
    result = subprocess.run(
        [sys.executable, str(RUNNER), *case.args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    booted = BOOT_LINE.search(result.stderr)
    assert booted, f"no boot line in:\n{result.stderr}"
    return Run(
        result.returncode,
        result.stdout,
        result.stderr,
        int(booted.group(1)),
        Path(booted.group(2)),
    )


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, Run]]:
    before = uml_processes()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run_runner, case) for name, case in CASES.items()}
        results = {name: future.result() for name, future in futures.items()}
    yield results
    assert uml_processes() <= before, "linux.uml processes outlived the runner"


@pytest.mark.parametrize("name", sorted(CASES))
def test_nothing_left_behind(runs: dict[str, Run], name: str) -> None:
    run = runs[name]
    assert process_group(run.uml_pid) == [], f"UML processes left by the {name!r} run"
    assert not run.rundir.exists(), f"run directory left by the {name!r} run"


def test_passing_selection_exits_zero(runs: dict[str, Run]) -> None:
    run = runs["pass"]
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    assert run.reasons() == []
    assert "kernel-test: OK: 1 collected: 1 passed" in run.stderr


def test_failing_test_exits_nonzero(runs: dict[str, Run]) -> None:
    run = runs["fail"]
    assert run.returncode == 1, run.stdout + run.stderr
    assert "selftest: deliberate failure" in run.stdout  # the guest's console is streamed
    assert run.reasons() == [
        "kernel-test: FAILED: pytest exited with status 1 "
        "(1 collected: 0 passed, 1 failed, 0 errors, 0 skipped)"
    ]


def test_selection_without_tests_exits_nonzero(runs: dict[str, Run]) -> None:
    run = runs["empty"]
    assert run.returncode == 5, run.stdout + run.stderr  # pytest's "no tests collected"
    assert len(run.reasons()) == 1


def test_skipped_test_exits_nonzero(runs: dict[str, Run]) -> None:
    run = runs["skip"]
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 passed, 1 skipped" in run.stdout  # pytest itself is content
    assert run.reasons() == [
        "kernel-test: FAILED: 1 skipped test(s): every kernel test must run "
        "(2 collected: 1 passed, 0 failed, 0 errors, 1 skipped)"
    ]
    assert "a skip must fail the kernel run" in run.stderr


def test_timeout_kills_the_guest(runs: dict[str, Run]) -> None:
    run = runs["timeout"]
    assert run.returncode == 124, run.stdout + run.stderr
    assert run.reasons() == [
        "kernel-test: FAILED: timed out after 5 s (DANM_KERNEL_TIMEOUT); killed the UML guest"
    ]


def test_guest_dying_mid_run_exits_nonzero(runs: dict[str, Run]) -> None:
    run = runs["crash"]
    assert run.returncode == 70, run.stdout + run.stderr
    assert len(run.reasons()) == 1
    assert "stopped before pytest finished" in run.reasons()[0]


def host_pytest(*args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "DANM_IN_KERNEL_VM"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_plain_pytest_does_not_collect_kernel_tests() -> None:
    # Collection errors elsewhere in tests/ are not this test's business.
    result = host_pytest("--collect-only", "-q", "--continue-on-collection-errors", "tests")
    output = result.stdout + result.stderr
    assert "tests/test_kernel_runner.py::test_kernel_tests_fail_outside_the_guest" in output
    assert "tests/kernel/" not in output
    assert SELFTEST not in output


def test_kernel_tests_fail_outside_the_guest() -> None:
    result = host_pytest("-q", "tests/kernel")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "run them through `scripts/kernel-test tests/kernel`" in result.stdout
    assert " skipped" not in result.stdout
