"""A smoke run of scripts/bench_cni.py with few iterations: its JSON line has every figure, the
figures are consistent with each other, and the run leaves no netns, link or process behind."""

import json
import os
import subprocess
import sys

from cnilib import host_links
from testlib import REPO

KEYS = {
    "danm_1if_ms", "go_1if_ms", "ratio_1if", "danm_3if_ms", "go_3if_ms", "ratio_3if",
    "apiserver_cpu_ms_1if", "apiserver_cpu_ms_3if", "import_ms_add", "import_ms_del",
    "lazy_import_ms_add", "lazy_import_ms_del", "verb_ms_add", "verb_ms_del", "python_start_ms",
    "danm_version_ms", "pre_verb_ms_add", "pre_verb_ms_del", "exit_ms_add", "exit_ms_del", "peak_rss_kb_add", "peak_rss_kb_del", "go_peak_rss_kb", "target_ratio_1if",
}


def netns_names() -> set[str]:
    return set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()


def test_smoke_run_reports_consistent_figures_and_cleans_up() -> None:
    links_before, netns_before = host_links(), netns_names()
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_cni.py"),
         "--iterations", "2", "--warmup", "1", "--profile-runs", "1", "--start-runs", "3"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    assert KEYS <= set(figures)
    assert figures["target_ratio_1if"] == 8
    for count in (1, 3):
        danm_ms, go_ms = figures[f"danm_{count}if_ms"], figures[f"go_{count}if_ms"]
        assert 0 < go_ms < danm_ms < 10_000
        assert abs(figures[f"ratio_{count}if"] - danm_ms / go_ms) < 0.01
        assert figures[f"apiserver_cpu_ms_{count}if"] >= 0
    # the import profile saw danm's modules, some of them loaded lazily by the verb
    for verb in ("add", "del"):
        assert 0 < figures[f"lazy_import_ms_{verb}"] < figures[f"import_ms_{verb}"]
        wall = figures[f"danm_{verb}_ms_1if"]
        assert 0 < figures[f"verb_ms_{verb}"] < wall and 0 < figures[f"pre_verb_ms_{verb}"] < wall
        assert 10_000 < figures[f"peak_rss_kb_{verb}"] < 1_000_000  # a Python process, in KiB
    assert 0 < figures["python_start_ms"] < figures["danm_version_ms"] + 50
    assert "ratio danm/Go, 1 interface(s)" in done.stdout  # the readable table precedes the JSON
    assert host_links() == links_before  # the veth master and every macvlan are gone
    assert netns_names() == netns_before
