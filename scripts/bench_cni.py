#!/usr/bin/env python3
"""CNI latency: a full ADD+DEL of a pod through the real `danm` binary, against the reference Go
plugins doing the same work, for 1 and for 3 macvlan interfaces.

danm runs as a runtime execs it (config on stdin, CNI_* in the environment) against the embedded
API server, which runs as its own process so that its CPU time can be told apart: it competes
for the same cores. Each pod's interfaces are on distinct DanmNets (macvlan on one veth master,
each with its own cidr, danm IPAM); danm delegates each to the reference macvlan plugin with
IPAM handed over (``ipamPlugin`` auto: the reference static plugin). The Go case is what a
runtime does for the same number of networks without danm: one macvlan+host-local ADD per
network (eth0, eth1, ...), then the DELs in reverse order, each network with its own subnet.

Per iteration the four cases (danm/Go x 1/3 interfaces) run in shuffled order, each in a fresh
``ip netns``, after a warm-up. Reported: medians of the ADD+DEL wall time and the ratios, the API
server's CPU per ADD+DEL (mean over all iterations: /proc ticks are 10 ms), the peak RSS and
CPU of each invocation (wait4 rusage), and where danm's time goes: a bare ``python -c pass``,
``CNI_COMMAND=VERSION danm``, danm's own imports (``-X importtime`` from ``danm.entry`` on;
those after ``danm.invocation`` are the verb's lazy ones) and danm's own ``done`` elapsed_ms. The last line is one JSON object.

    python scripts/bench_cni.py [--iterations N] [--danm PATH]
"""

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from danm import kube
from cnilib import NODE, create_network, create_pod, unique
from delegatelib import veth_parent

REFERENCE_PLUGINS = Path("/usr/lib/cni")
TARGET_RATIO_1IF = 8
INTERFACE_COUNTS = (1, 3)
DANM_CIDRS = ("10.87.0.0/24", "10.87.1.0/24", "10.87.2.0/24")
GO_SUBNETS = ("10.88.0.0/24", "10.88.1.0/24", "10.88.2.0/24")
CLOCK_TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")


def default_danm() -> str:
    beside = Path(sys.executable).parent / "danm"
    if not beside.exists():
        raise SystemExit(f"no danm binary beside {sys.executable}; install danm there or pass --danm")
    return str(beside)


@dataclass
class Child:
    """One finished process: wall time, exit code, output, and its rusage (wait4: the process
    and the children it waited for, so a delegate plugin's RSS counts only if it is larger)."""

    wall_ms: float
    spawned_at: float  # time.time() just before the exec, to place the child's log lines
    returncode: int
    stdout: bytes
    stderr: str
    max_rss_kb: int
    cpu_ms: float


def run_child(argv: list[str], env: dict[str, str], stdin: bytes, scratch: Path) -> Child:
    """Run ``argv`` as a runtime would and reap it with wait4 for its rusage. Output goes to
    files, so that no pipe can fill while the child runs and the parent does not read it."""
    out_path, err_path = scratch / "stdout", scratch / "stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        spawned_at = time.time()
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=out, stderr=err)
        assert process.stdin is not None
        process.stdin.write(stdin)  # a config is far below the pipe's capacity
        process.stdin.close()
        _, status, usage = os.wait4(process.pid, 0)
        wall_ms = (time.perf_counter() - started) * 1000.0
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait
    return Child(
        wall_ms,
        spawned_at,
        process.returncode,
        out_path.read_bytes(),
        err_path.read_text(errors="replace"),
        usage.ru_maxrss,
        (usage.ru_utime + usage.ru_stime) * 1000.0,
    )


def checked(child: Child, what: str) -> Child:
    if child.returncode != 0:
        raise SystemExit(f"{what} failed with {child.returncode}: {child.stdout!r}\n{child.stderr[-3000:]}")
    return child


@contextmanager
def fresh_netns() -> Iterator[str]:
    name = unique("danm-bench-")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@contextmanager
def api_server(directory: Path, danm: str) -> Iterator[tuple[int, Path]]:
    """`danm apiserver` in its own process; yields its pid and kubeconfig."""
    kubeconfig = directory / "kubeconfig"
    process = subprocess.Popen(
        [danm, "apiserver", "--kubeconfig-out", str(kubeconfig), "--crds", str(REPO / "deploy" / "crds")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        if not process.stdout.readline():
            raise SystemExit("danm apiserver exited before printing its URL")
        yield process.pid, kubeconfig
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_ms_of(pid: int) -> float:
    """utime+stime of a process (all its threads) from /proc, in ms."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) * CLOCK_TICK_MS


@dataclass
class Samples:
    """Per case: ADD+DEL wall times, and per danm/plugin invocation its rusage."""

    total_ms: list[float] = field(default_factory=list)
    add_ms: list[float] = field(default_factory=list)
    del_ms: list[float] = field(default_factory=list)
    add_rss_kb: list[int] = field(default_factory=list)
    del_rss_kb: list[int] = field(default_factory=list)
    add_cpu_ms: list[float] = field(default_factory=list)
    del_cpu_ms: list[float] = field(default_factory=list)
    verb_add_ms: list[float] = field(default_factory=list)
    verb_del_ms: list[float] = field(default_factory=list)
    pre_verb_add_ms: list[float] = field(default_factory=list)
    pre_verb_del_ms: list[float] = field(default_factory=list)
    apiserver_cpu_ms: float = 0.0  # summed; divided by len(total_ms) when reported


def verb_phases(child: Child) -> tuple[float, float]:
    """From danm's ``done`` log line: the ms from the exec to the verb's start (interpreter,
    eager imports, protocol checks), and the verb's own elapsed_ms (lazy imports included)."""
    for line in reversed(child.stderr.splitlines()):
        if line.startswith("{") and '"event":"done"' in line:
            done = json.loads(line)
            elapsed_ms: float = done["elapsed_ms"]
            logged_at = datetime.fromisoformat(done["time"]).timestamp()
            return (logged_at - child.spawned_at) * 1000.0 - elapsed_ms, elapsed_ms
    raise SystemExit(f"no 'done' line in danm's log:\n{child.stderr[-2000:]}")


class Bench:
    def __init__(self, danm: str, directory: Path, parent: str, client: kube.ApiClient, apiserver_pid: int,
                 kubeconfig: Path) -> None:
        self.danm = danm
        self.directory = directory
        self.client = client
        self.apiserver_pid = apiserver_pid
        self.scratch = directory / "scratch"
        self.scratch.mkdir()
        bin_dir = directory / "bin"  # what an installation has: danm and fakeipam in the CNI bin dir
        bin_dir.mkdir()
        for name in ("danm", "fakeipam"):
            (bin_dir / name).symlink_to(danm)
        (directory / "net.d").mkdir()
        self.base_env = {key: value for key, value in os.environ.items() if not key.startswith("CNI_")}
        self.base_env.pop("PYTHONPROFILEIMPORTTIME", None)
        self.danm_cni_path = f"{bin_dir}:{REFERENCE_PLUGINS}"
        self.danm_config = json.dumps({
            "cniVersion": "1.0.0",
            "name": "danm-bench",
            "type": "danm",
            "kubeconfig": str(kubeconfig),
            "logFile": str(directory / "danm.log"),
            "runDir": str(directory / "run"),
            "stateDir": str(directory / "state"),
            "cniDir": str(directory / "net.d"),
            "nodeName": NODE,
        }).encode()
        self.networks = [unique("bench") for _ in DANM_CIDRS]
        for name, cidr in zip(self.networks, DANM_CIDRS):
            create_network(client, name, network_type="macvlan", host_device=parent, cidr=cidr)
        self.go_configs = [
            json.dumps({
                "cniVersion": "1.0.0",
                "name": f"bench-go-{index}",
                "type": "macvlan",
                "master": parent,
                "mode": "bridge",
                "ipam": {"type": "host-local", "subnet": subnet, "dataDir": str(directory / "host-local")},
            }).encode()
            for index, subnet in enumerate(GO_SUBNETS)
        ]
        self.samples: dict[str, Samples] = {
            f"{kind}_{count}if": Samples() for kind in ("danm", "go") for count in INTERFACE_COUNTS
        }

    def danm_env(self, command: str, container: str, netns: str, pod: str, **extra: str) -> dict[str, str]:
        return {
            **self.base_env,
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container,
            "CNI_NETNS": netns,
            "CNI_IFNAME": "eth0",
            "CNI_PATH": self.danm_cni_path,
            "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod};"
                        f"K8S_POD_INFRA_CONTAINER_ID={container}",
            **extra,
        }

    def new_pod(self, count: int) -> str:
        pod = unique("bench-")
        create_pod(self.client, pod, [{"network": name, "ip": "dynamic"} for name in self.networks[:count]])
        return pod

    def danm_pod(self, count: int, record: Samples | None) -> None:
        pod = self.new_pod(count)
        with fresh_netns() as netns:
            cpu_before = cpu_ms_of(self.apiserver_pid)
            added = checked(
                run_child([self.danm], self.danm_env("ADD", pod, netns, pod), self.danm_config, self.scratch),
                f"danm ADD of {count} interfaces",
            )
            deleted = checked(
                run_child([self.danm], self.danm_env("DEL", pod, netns, pod), self.danm_config, self.scratch),
                f"danm DEL of {count} interfaces",
            )
            cpu_after = cpu_ms_of(self.apiserver_pid)
        if record is None:
            return
        record.total_ms.append(added.wall_ms + deleted.wall_ms)
        record.add_ms.append(added.wall_ms)
        record.del_ms.append(deleted.wall_ms)
        record.add_rss_kb.append(added.max_rss_kb)
        record.del_rss_kb.append(deleted.max_rss_kb)
        record.add_cpu_ms.append(added.cpu_ms)
        record.del_cpu_ms.append(deleted.cpu_ms)
        for child, pre_verb, verb in ((added, record.pre_verb_add_ms, record.verb_add_ms),
                                      (deleted, record.pre_verb_del_ms, record.verb_del_ms)):
            before_verb_ms, verb_ms = verb_phases(child)
            pre_verb.append(before_verb_ms)
            verb.append(verb_ms)
        record.apiserver_cpu_ms += cpu_after - cpu_before

    def go_pod(self, count: int, record: Samples | None) -> None:
        container = unique("go-")
        plugin = str(REFERENCE_PLUGINS / "macvlan")
        with fresh_netns() as netns:
            cpu_before = cpu_ms_of(self.apiserver_pid)
            runs: dict[str, list[Child]] = {"ADD": [], "DEL": []}
            order = {"ADD": list(range(count)), "DEL": list(reversed(range(count)))}
            for command in ("ADD", "DEL"):
                for index in order[command]:
                    env = {
                        **self.base_env,
                        "CNI_COMMAND": command,
                        "CNI_CONTAINERID": container,
                        "CNI_NETNS": netns,
                        "CNI_IFNAME": f"eth{index}",
                        "CNI_PATH": str(REFERENCE_PLUGINS),
                    }
                    runs[command].append(checked(
                        run_child([plugin], env, self.go_configs[index], self.scratch), f"Go macvlan {command} eth{index}"
                    ))
            cpu_after = cpu_ms_of(self.apiserver_pid)
        if record is None:
            return
        add_ms = sum(child.wall_ms for child in runs["ADD"])
        del_ms = sum(child.wall_ms for child in runs["DEL"])
        record.total_ms.append(add_ms + del_ms)
        record.add_ms.append(add_ms)
        record.del_ms.append(del_ms)
        record.add_rss_kb.extend(child.max_rss_kb for child in runs["ADD"])
        record.del_rss_kb.extend(child.max_rss_kb for child in runs["DEL"])
        record.add_cpu_ms.append(sum(child.cpu_ms for child in runs["ADD"]))
        record.del_cpu_ms.append(sum(child.cpu_ms for child in runs["DEL"]))
        record.apiserver_cpu_ms += cpu_after - cpu_before

    def iteration(self, measured: bool) -> None:
        cases = [(kind, count) for kind in ("danm", "go") for count in INTERFACE_COUNTS]
        random.shuffle(cases)
        for kind, count in cases:
            record = self.samples[f"{kind}_{count}if"] if measured else None
            if kind == "danm":
                self.danm_pod(count, record)
            else:
                self.go_pod(count, record)

    def profiled_imports(self, runs: int) -> dict[str, Any]:
        """-X importtime of danm's ADD and DEL of one interface: total, lazy (the verb's), top."""
        totals: dict[str, list[float]] = {"add": [], "del": [], "add_lazy": [], "del_lazy": []}
        top: dict[str, list[tuple[str, float]]] = {}
        argv = [interpreter_of(self.danm), "-X", "importtime", "-c", MARKING_LAUNCHER, self.danm]
        for _ in range(runs):
            pod = self.new_pod(1)
            with fresh_netns() as netns:
                for command in ("ADD", "DEL"):
                    env = self.danm_env(command, pod, netns, pod)
                    child = checked(run_child(argv, env, self.danm_config, self.scratch), f"profiled {command}")
                    total, lazy, entries = import_profile(child.stderr)
                    totals[command.lower()].append(total)
                    totals[f"{command.lower()}_lazy"].append(lazy)
                    top[command.lower()] = entries
        return {
            "import_ms": {key: statistics.median(values) for key, values in totals.items()},
            "top": top,
        }

    def reference_starts(self, runs: int) -> dict[str, float]:
        """A bare interpreter start and `CNI_COMMAND=VERSION danm`, interleaved."""
        cases = {
            "python_start_ms": ([sys.executable, "-c", "pass"], self.base_env),
            "danm_version_ms": ([self.danm], {**self.base_env, "CNI_COMMAND": "VERSION"}),
        }
        samples: dict[str, list[float]] = {name: [] for name in cases}
        schedule = [name for name in cases for _ in range(runs + 3)]
        random.shuffle(schedule)
        for name in schedule:
            argv, env = cases[name]
            samples[name].append(checked(run_child(argv, env, b"", self.scratch), name).wall_ms)
        return {name: statistics.median(values[3:]) for name, values in samples.items()}


# Runs the danm script (argv[1]) as its interpreter would, and marks on stderr, among the
# `-X importtime` lines, where the verb starts: at the opening of the node-wide slot file, the
# first thing the verb does. An audit hook sees it in the compiled build too, where danm's own
# modules do not appear in the import profile (mypyc initialises them without importlib).
VERB_MARK = "bench-cni: the verb starts"
MARKING_LAUNCHER = f"""
import os, sys
marked = []
def mark(event, args):
    if not marked and event == "open" and isinstance(args[0], str) and "/slots/slot-" in args[0]:
        marked.append(True)
        os.write(2, b"{VERB_MARK}\\n")
sys.addaudithook(mark)
sys.argv = sys.argv[1:]
with open(sys.argv[0], "rb") as script:
    code = compile(script.read(), sys.argv[0], "exec")
exec(code, {{"__name__": "__main__", "__file__": sys.argv[0]}})
"""


def interpreter_of(script: str) -> str:
    """The Python of a console script, from its shebang."""
    with open(script, "rb") as handle:
        first = handle.readline().decode(errors="replace").strip()
    if not first.startswith("#!") or "python" not in first:
        raise SystemExit(f"{script} is not a Python console script (shebang {first!r})")
    return first[2:].split()[0]


def import_profile(stderr: str) -> tuple[float, float, list[tuple[str, float]]]:
    """From `-X importtime` lines, the imports after the interpreter's own (those of `site` and
    before, which a bare `python -c pass` pays too): their total self time in ms, the part
    imported after VERB_MARK (by the verb, lazily), and the top-level imports by their ms."""
    groups: list[tuple[str, int]] = []  # each top-level import with the nested ones before it
    members: list[set[str]] = []
    pending_us = 0
    pending_names: set[str] = set()
    verb_starts = -1  # index of the first group imported by the verb
    for line in stderr.splitlines():
        if line == VERB_MARK:
            verb_starts = len(groups)
        if not line.startswith("import time:") or line.count("|") != 2 or "self [us]" in line:
            continue
        self_us, _cumulative, name = line[len("import time:") :].split("|")
        pending_us += int(self_us)
        pending_names.add(name.strip())
        if not name.startswith("  "):  # one space follows the bar; nested imports are indented
            groups.append((name.strip(), pending_us))
            members.append(pending_names)
            pending_us, pending_names = 0, set()

    def group_of(module: str) -> int:
        for index, names in enumerate(members):
            if module in names:
                return index
        raise SystemExit(f"{module} is not in the import profile:\n{stderr[:3000]}")

    if verb_starts < 0:
        raise SystemExit(f"no verb mark in the import profile:\n{stderr[-3000:]}")
    own = groups[group_of("site") + 1 :]
    lazy = groups[verb_starts:]
    top = sorted(((module, us / 1000.0) for module, us in own), key=lambda entry: entry[1], reverse=True)
    return sum(us for _, us in own) / 1000.0, sum(us for _, us in lazy) / 1000.0, top[:10]


def median(values: list[float] | list[int]) -> float:
    return float(statistics.median(values))


def exit_ms(wall: list[float], pre_verb: list[float], verb: list[float]) -> list[float]:
    """Per invocation, what follows the ``done`` line: interpreter teardown, exit, reaping."""
    return [total - before - own for total, before, own in zip(wall, pre_verb, verb)]


def exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description="CNI ADD+DEL latency: danm against the reference Go plugins")
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--profile-runs", type=int, default=3, help="-X importtime runs of ADD and DEL")
    parser.add_argument("--start-runs", type=int, default=30, help="runs of python -c pass and VERSION")
    parser.add_argument("--danm", default=None)
    options = parser.parse_args()
    danm = options.danm or default_danm()
    if os.geteuid() != 0:
        raise SystemExit("needs root: network namespaces and links")
    signal.signal(signal.SIGTERM, exit_on_signal)  # unwinds the ExitStack: netns, links, server

    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cni-")))
        apiserver_pid, kubeconfig = stack.enter_context(api_server(directory, danm))
        parent = stack.enter_context(veth_parent())
        client = stack.enter_context(kube.ApiClient(kube.load_config(str(kubeconfig))))
        bench = Bench(danm, directory, parent, client, apiserver_pid, kubeconfig)
        for _ in range(options.warmup):
            bench.iteration(measured=False)
        for _ in range(options.iterations):
            bench.iteration(measured=True)
        profile = bench.profiled_imports(options.profile_runs)
        starts = bench.reference_starts(options.start_runs)

    samples = bench.samples
    figures: dict[str, Any] = {}
    for count in INTERFACE_COUNTS:
        danm_ms = median(samples[f"danm_{count}if"].total_ms)
        go_ms = median(samples[f"go_{count}if"].total_ms)
        figures[f"danm_{count}if_ms"] = round(danm_ms, 2)
        figures[f"go_{count}if_ms"] = round(go_ms, 2)
        figures[f"ratio_{count}if"] = round(danm_ms / go_ms, 2)
    for count in INTERFACE_COUNTS:
        danm_case = samples[f"danm_{count}if"]
        figures[f"apiserver_cpu_ms_{count}if"] = round(danm_case.apiserver_cpu_ms / len(danm_case.total_ms), 1)
    danm_1 = samples["danm_1if"]
    go_1 = samples["go_1if"]
    figures.update({
        "import_ms_add": round(profile["import_ms"]["add"], 1),
        "import_ms_del": round(profile["import_ms"]["del"], 1),
        "lazy_import_ms_add": round(profile["import_ms"]["add_lazy"], 1),
        "lazy_import_ms_del": round(profile["import_ms"]["del_lazy"], 1),
        "verb_ms_add": round(median(danm_1.verb_add_ms), 1),
        "verb_ms_del": round(median(danm_1.verb_del_ms), 1),
        "pre_verb_ms_add": round(median(danm_1.pre_verb_add_ms), 1),
        "pre_verb_ms_del": round(median(danm_1.pre_verb_del_ms), 1),
        "exit_ms_add": round(median(exit_ms(danm_1.add_ms, danm_1.pre_verb_add_ms, danm_1.verb_add_ms)), 1),
        "exit_ms_del": round(median(exit_ms(danm_1.del_ms, danm_1.pre_verb_del_ms, danm_1.verb_del_ms)), 1),
        "python_start_ms": round(starts["python_start_ms"], 2),
        "danm_version_ms": round(starts["danm_version_ms"], 2),
        "danm_add_ms_1if": round(median(danm_1.add_ms), 2),
        "danm_del_ms_1if": round(median(danm_1.del_ms), 2),
        "go_add_ms_1if": round(median(go_1.add_ms), 2),
        "go_del_ms_1if": round(median(go_1.del_ms), 2),
        "danm_add_ms_3if": round(median(samples["danm_3if"].add_ms), 2),
        "danm_del_ms_3if": round(median(samples["danm_3if"].del_ms), 2),
        "peak_rss_kb_add": max(danm_1.add_rss_kb + samples["danm_3if"].add_rss_kb),
        "peak_rss_kb_del": max(danm_1.del_rss_kb + samples["danm_3if"].del_rss_kb),
        "go_peak_rss_kb": max(go_1.add_rss_kb + go_1.del_rss_kb),
        "danm_cpu_ms_add_1if": round(median(danm_1.add_cpu_ms), 1),
        "danm_cpu_ms_del_1if": round(median(danm_1.del_cpu_ms), 1),
        "go_cpu_ms_1if": round(median([a + d for a, d in zip(go_1.add_cpu_ms, go_1.del_cpu_ms)]), 1),
        "apiserver_cpu_ms_go_1if": round(go_1.apiserver_cpu_ms / len(go_1.total_ms), 1),
        "target_ratio_1if": TARGET_RATIO_1IF,
        "iterations": options.iterations,
        "cpus": os.cpu_count(),
        "danm": danm,
    })
    report(figures, samples, profile)
    print(json.dumps(figures))


def report(figures: dict[str, Any], samples: dict[str, Samples], profile: dict[str, Any]) -> None:
    print(f"{'case':<9} {'ADD+DEL median':>15} {'ADD':>9} {'DEL':>9} {'spread (pstdev)':>16}")
    for name, case in samples.items():
        print(
            f"{name:<9} {median(case.total_ms):12.1f} ms {median(case.add_ms):6.1f} ms {median(case.del_ms):6.1f} ms"
            f" {statistics.pstdev(case.total_ms):13.1f} ms"
        )
    for count in INTERFACE_COUNTS:
        ratio = figures[f"ratio_{count}if"]
        verdict = "" if count != 1 else (" (within the target)" if ratio <= TARGET_RATIO_1IF else
                                        f" (OVER the target of {TARGET_RATIO_1IF})")
        print(f"ratio danm/Go, {count} interface(s): {ratio:.2f}{verdict}; API server CPU per ADD+DEL "
              f"{figures[f'apiserver_cpu_ms_{count}if']:.1f} ms")
    print(f"peak RSS per danm invocation: ADD {figures['peak_rss_kb_add']} KiB, DEL {figures['peak_rss_kb_del']} KiB "
          f"(Go macvlan: {figures['go_peak_rss_kb']} KiB); danm CPU ADD {figures['danm_cpu_ms_add_1if']:.1f} ms, "
          f"DEL {figures['danm_cpu_ms_del_1if']:.1f} ms")
    print("where the time of one danm invocation (1 interface, medians) goes; imports from -X importtime,")
    print("which inflates them: upper bounds")
    for verb in ("add", "del"):
        start = figures["python_start_ms"]
        before = figures[f"pre_verb_ms_{verb}"]
        verb_ms = figures[f"verb_ms_{verb}"]
        lazy = figures[f"lazy_import_ms_{verb}"]
        eager = figures[f"import_ms_{verb}"] - lazy
        print(f"  {verb.upper()} {figures[f'danm_{verb}_ms_1if']:6.1f} ms = before the verb {before:.1f} "
              f"(interpreter start {start:.1f}, imports {eager:.1f}, other {before - start - eager:.1f})")
        print(f"{'':>15} + verb {verb_ms:.1f} (imports {lazy:.1f}, API and delegates {verb_ms - lazy:.1f})"
              f" + exit {figures[f'exit_ms_{verb}']:.1f}")
        top = ", ".join(f"{module} {ms:.1f}" for module, ms in profile["top"][verb][:6])
        print(f"{'':>15} top-level imports (ms, nested ones included): {top}")
    print(f"  reference: python -c pass {figures['python_start_ms']:.1f} ms, "
          f"CNI_COMMAND=VERSION danm {figures['danm_version_ms']:.1f} ms")


if __name__ == "__main__":
    main()
