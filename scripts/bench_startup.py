#!/usr/bin/env python3
"""Start-up cost of the CNI path: `CNI_COMMAND=VERSION danm` against a bare `python -c pass`.

Both commands run with the same interpreter, interleaved in shuffled order after a warm-up, so
disk cache and CPU frequency affect them alike. Reports medians, the spread, and the ratio; the
target is a ratio of at most 2.0. The last line is one JSON object with the figures.

    python scripts/bench_startup.py [--runs N] [--danm PATH]
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_RATIO = 2.0


def default_danm() -> str:
    beside = Path(sys.executable).parent / "danm"
    if beside.exists():
        return str(beside)
    found = shutil.which("danm")
    if found is None:
        raise SystemExit("no danm binary found beside the interpreter or on PATH; pass --danm")
    return found


def time_once(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed with {done.returncode}: {done.stderr.decode()}")
    return elapsed * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--danm", default=None)
    options = parser.parse_args()
    danm = options.danm or default_danm()

    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    danm_env = dict(env, CNI_COMMAND="VERSION")
    python_argv = [sys.executable, "-c", "pass"]

    reply = subprocess.run([danm], env=danm_env, capture_output=True, check=True).stdout
    if b"supportedVersions" not in reply:
        raise SystemExit(f"unexpected VERSION answer: {reply!r}")

    cases = [("danm", [danm], danm_env), ("python", python_argv, env)]
    for _ in range(10):
        for _name, argv, case_env in cases:
            time_once(argv, case_env)

    samples: dict[str, list[float]] = {"danm": [], "python": []}
    schedule = [case for case in cases for _ in range(options.runs)]
    random.shuffle(schedule)
    for name, argv, case_env in schedule:
        samples[name].append(time_once(argv, case_env))

    danm_ms = statistics.median(samples["danm"])
    python_ms = statistics.median(samples["python"])
    ratio = danm_ms / python_ms
    for name in ("danm", "python"):
        values = samples[name]
        print(
            f"{name:>6}: median {statistics.median(values):6.2f} ms  "
            f"mean {statistics.mean(values):6.2f} ± {statistics.pstdev(values):5.2f} ms  "
            f"({len(values)} runs)"
        )
    verdict = "within" if ratio <= TARGET_RATIO else "OVER"
    print(f"ratio danm/python: {ratio:.2f} ({verdict} the {TARGET_RATIO:.1f}x target)")
    figures = {
        "danm_ms": round(danm_ms, 3),
        "python_ms": round(python_ms, 3),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "runs": options.runs,
        "danm": danm,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
