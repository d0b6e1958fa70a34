#!/usr/bin/env python3
"""IPAM speed: one dynamic reservation on a /9 network (2^23 addresses, ~1.4 MB of base64).

The timed step runs from a decoded network Struct (base64 ``alloc`` string) to the updated
Struct (new ``alloc`` and ``lastIp``); JSON decoding and encoding of the whole object are
excluded on both sides. States: (i) contiguous fill of 0 %, 50 % and 99.9 % with lastIp at the
pool start, so the free address is found only after a long scan; (ii) the same with a legacy
CIDR-form lastIp; (iii) a uniform random 50 % fill.

Baselines, measured in the same run on the same bitmaps: the straightforward step (decode the
base64, scan bit by bit from lastIp, set, re-encode) in Go (scripts/baseline/ipam_baseline.go,
standard library, built with Debian's golang-1.19) and in plain Python. The ratio uses Go.

Also: (b) the step with the embedded API server round trip, and bytes sent per allocation;
(c) every address of a /16 allocated one by one through the pure core; (d) a burst of 200
reservations from 8 processes on one network: p50/p99 latency and the 409-retry histogram.
The last line is one JSON object with every figure.

    python scripts/bench_ipam.py [--runs N] [--go PATH]
"""

import argparse
import base64
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from danm import ipam
from danm.patch import struct_patch
from danm.types import AllocationPool, Network, NetworkOptions, NetworkSpec, ObjectMeta

REPO = Path(__file__).resolve().parent.parent
GO = "/usr/lib/go-1.19/bin/go"
BITS = 1 << 23  # a /9
CIDR = "10.0.0.0/9"
POOL_START, POOL_END = "10.0.0.1", "10.127.255.254"


def bitmap(filled: list[int] | range | None, random_fraction: float = 0.0) -> bytes:
    data = bytearray(BITS // 8)
    if random_fraction:
        rng = random.Random(7)
        data = bytearray(rng.getrandbits(8) for _ in range(BITS // 8))
    elif isinstance(filled, range) and filled:
        whole, rest = divmod(filled.stop, 8)
        data[:whole] = b"\xff" * whole
        for bit in range(whole * 8, filled.stop):
            data[bit // 8] |= 0x80 >> (bit % 8)
    data[0] |= 0x80
    data[-1] |= 0x01
    return bytes(data)


def network(alloc: bytes, last_ip: str) -> Network:
    pool = AllocationPool(start=POOL_START, end=POOL_END, last_ip=last_ip)
    options = NetworkOptions(cidr=CIDR, allocation_pool=pool, alloc=base64.b64encode(alloc).decode())
    return Network(metadata=ObjectMeta(name="big", namespace="default", resource_version="1"),
                   spec=NetworkSpec(network_id="big", options=options))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def time_core(net: Network, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        ipam.reserve(net, "dynamic", "")
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


def naive_python(alloc_b64: str, start: int, end: int, last: int) -> tuple[str, int]:
    bits = bytearray(base64.b64decode(alloc_b64))
    begin = last + 1 if start <= last + 1 <= end else start
    for index in range(begin, end + 1):
        if not bits[index // 8] & (0x80 >> (index % 8)):
            break
    else:
        for index in range(start, begin):
            if not bits[index // 8] & (0x80 >> (index % 8)):
                break
        else:
            raise RuntimeError("pool exhausted")
    bits[index // 8] |= 0x80 >> (index % 8)
    return base64.b64encode(bytes(bits)).decode(), index


def time_naive(alloc_b64: str, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        naive_python(alloc_b64, 1, BITS - 2, 1)
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


def build_go(go: str, directory: Path) -> Path:
    binary = directory / "ipam_baseline"
    env = dict(os.environ, GOCACHE=str(directory / "gocache"), GOPATH=str(directory / "gopath"), HOME=str(directory))
    subprocess.run([go, "build", "-o", str(binary), str(REPO / "scripts" / "baseline" / "ipam_baseline.go")],
                   check=True, env=env, capture_output=True)
    return binary


def time_go(binary: Path, alloc_b64: str, runs: int) -> tuple[list[float], int]:
    request = json.dumps({"alloc": alloc_b64, "start": 1, "end": BITS - 2, "last": 1, "runs": runs})
    done = subprocess.run([str(binary)], input=request, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    return [ns / 1e6 for ns in result["ns"]], int(result["index"])


def index_of(address: str) -> int:
    parts = [int(part) for part in address.split("/")[0].split(".")]
    return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) - (10 << 24)


def slash16() -> dict[str, float]:
    options = NetworkOptions(cidr="10.1.0.0/16")
    net = ipam.initialise(Network(metadata=ObjectMeta(name="n16"), spec=NetworkSpec(network_id="n16", options=options)))
    count = 0
    started = time.perf_counter()
    while True:
        try:
            net = ipam.reserve(net, "dynamic", "").network
        except ipam.PoolExhaustedError:
            break
        count += 1
    seconds = time.perf_counter() - started
    return {"slash16_addresses": count, "slash16_seconds": round(seconds, 3), "slash16_us_per_alloc": round(seconds / count * 1e6, 2)}


BURST_WORKER = """
import json, sys, time
from danm import ipam, kube
client = kube.ApiClient(kube.load_config(sys.argv[1]))
out = []
for _ in range(int(sys.argv[2])):
    started = time.perf_counter()
    done = ipam.reserve_on_api(client, "DanmNet", "default", "burst", "dynamic", "", time.monotonic() + 120)
    out.append([(time.perf_counter() - started) * 1000.0, done.conflicts])
print(json.dumps(out))
"""


def with_api(directory: Path, runs: int) -> dict[str, Any]:
    from danm import kube

    kubeconfig = directory / "kubeconfig"
    danm = Path(sys.executable).parent / "danm"
    server = subprocess.Popen([str(danm), "apiserver", "--kubeconfig-out", str(kubeconfig), "--crds", str(REPO / "deploy" / "crds")],
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    server.stdout.readline()
    figures: dict[str, Any] = {}
    try:
        client = kube.ApiClient(kube.load_config(str(kubeconfig)), timeout=120)
        big = network(bitmap(range(BITS // 2)), POOL_START)
        big = msgspec.structs.replace(big, metadata=ObjectMeta(name="big", namespace="default"))
        client.request("POST", kube.DANMNETS.path("default"), body=msgspec.json.encode(big))
        samples, sent = [], []
        for _ in range(runs):
            before = client.get(kube.DANMNETS, "default", "big", Network)
            started = time.perf_counter()
            done = ipam.reserve_on_api(client, "DanmNet", "default", "big", "dynamic", "", time.monotonic() + 60)
            samples.append((time.perf_counter() - started) * 1000.0)
            sent.append(len(msgspec.json.encode(struct_patch(before, done.reservation.network))))
        figures.update({"api_p50_ms": round(statistics.median(samples), 3), "api_p99_ms": round(percentile(samples, 0.99), 3),
                        "api_bytes_sent_per_alloc": int(statistics.median(sent))})
        burst = {"apiVersion": "danm.io/v1", "kind": "DanmNet", "metadata": {"name": "burst", "namespace": "default"},
                 "spec": {"NetworkID": "burst", "Options": {"cidr": "10.200.0.0/20"}}}
        client.request("POST", kube.DANMNETS.path("default"), body=json.dumps(burst).encode())
        script = directory / "burst.py"
        script.write_text(BURST_WORKER)
        workers = [subprocess.Popen([sys.executable, str(script), str(kubeconfig), "25"], stdout=subprocess.PIPE, text=True) for _ in range(8)]
        results = [row for worker in workers for row in json.loads(worker.communicate(timeout=600)[0])]
        latencies = [row[0] for row in results]
        histogram: dict[str, int] = {}
        for _, conflicts in results:
            histogram[str(conflicts)] = histogram.get(str(conflicts), 0) + 1
        figures.update({"burst_reservations": len(results), "burst_p50_ms": round(statistics.median(latencies), 3),
                        "burst_p99_ms": round(percentile(latencies, 0.99), 3),
                        "burst_retry_histogram": dict(sorted(histogram.items(), key=lambda item: int(item[0])))})
        client.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description="IPAM reservation speed on a /9, against Go and plain Python")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--naive-runs", type=int, default=5)
    parser.add_argument("--api-runs", type=int, default=20)
    parser.add_argument("--go", default=GO)
    options = parser.parse_args()
    figures: dict[str, Any] = {"baseline": "go", "runs": options.runs}
    cases = [
        ("fill0", bitmap(range(0)), POOL_START),
        ("fill50", bitmap(range(BITS // 2)), POOL_START),
        ("fill99.9", bitmap(range(int(BITS * 0.999))), POOL_START),
        ("fill0_cidr_lastip", bitmap(range(0)), POOL_START + "/9"),
        ("fill50_cidr_lastip", bitmap(range(BITS // 2)), POOL_START + "/9"),
        ("fill99.9_cidr_lastip", bitmap(range(int(BITS * 0.999))), POOL_START + "/9"),
        ("random50", bitmap(None, 0.5), POOL_START),
    ]
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        go_binary = build_go(options.go, directory)
        worst_ratio = 0.0
        for name, alloc, last_ip in cases:
            net = network(alloc, last_ip)
            found = index_of(ipam.reserve(net, "dynamic", "").ip4)
            core = time_core(net, options.runs)
            go, go_index = time_go(go_binary, net.spec.options.alloc, max(10, options.runs // 2))
            naive = time_naive(net.spec.options.alloc, options.naive_runs)
            assert found == go_index, f"{name}: danm found {found}, the baseline {go_index}"
            p50, go_p50 = statistics.median(core), statistics.median(go)
            figures[name] = {"p50_ms": round(p50, 3), "p99_ms": round(percentile(core, 0.99), 3),
                             "go_p50_ms": round(go_p50, 3), "python_p50_ms": round(statistics.median(naive), 3),
                             "vs_go": round(p50 / go_p50, 3)}
            worst_ratio = max(worst_ratio, p50 / go_p50)
            print(f"{name:>22}: danm p50 {p50:7.3f} ms p99 {percentile(core, 0.99):7.3f} ms | "
                  f"go {go_p50:7.3f} ms | python {statistics.median(naive):8.3f} ms | {p50 / go_p50:5.2f}x go")
        figures["reserve_median_ms_max"] = max(figures[name]["p50_ms"] for name, _, _ in cases)
        go_reference = max(figures[name]["go_p50_ms"] for name, _, _ in cases)
        figures["vs_go_baseline"] = round(figures["reserve_median_ms_max"] / go_reference, 3)
        figures["worst_case_vs_go"] = round(worst_ratio, 3)
        figures.update(slash16())
        print(f"/16 one by one: {figures['slash16_addresses']} addresses in {figures['slash16_seconds']} s")
        figures.update(with_api(directory, options.api_runs))
        print(f"with the API round trip: p50 {figures['api_p50_ms']} ms, {figures['api_bytes_sent_per_alloc']} bytes sent")
        print(f"burst of {figures['burst_reservations']}: p50 {figures['burst_p50_ms']} ms p99 {figures['burst_p99_ms']} ms "
              f"retries {figures['burst_retry_histogram']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
