#!/usr/bin/env python3
"""GET and PUT requests per second against the embedded API server: danm's lean client
(danm.kube) against the official kubernetes client, in the same run.

The server runs as its own process (`danm apiserver`), so client and server do not share a GIL.
Each client does sequential requests on one kept-alive connection: GET of a DanmEp decoded into
its type (the lean client's Struct, the official client's dict), and PUT of the same DanmEp with
its resourceVersion. Rounds alternate between the clients; medians of the rounds are reported.
The last line is one JSON object with the figures.

    python scripts/bench_apiserver.py [--requests N] [--rounds R]
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def start_server(directory: Path) -> tuple[subprocess.Popen[str], Path]:
    kubeconfig = directory / "kubeconfig"
    danm = Path(sys.executable).parent / "danm"
    process = subprocess.Popen(
        [str(danm), "apiserver", "--kubeconfig-out", str(kubeconfig), "--crds", str(REPO / "deploy" / "crds")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.readline()
    return process, kubeconfig


def endpoint(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "danm.io/v1",
        "kind": "DanmEp",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "bench"}},
        "spec": {
            "NetworkName": "internal",
            "NetworkType": "ipvlan",
            "EndpointID": name,
            "Interface": {"Name": "eth1", "Address": "10.0.0.2/24", "AddressIPv6": "", "MacAddress": "",
                          "proutes": None, "proutes6": None},
            "Pod": "bench", "apiType": "DanmNet",
        },
    }


def rate(action: Callable[[], object], requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        action()
    return requests / (time.perf_counter() - started)


def lean_cases(kubeconfig: Path) -> dict[str, Callable[[], object]]:
    from danm import kube, types

    client = kube.ApiClient(kube.load_config(str(kubeconfig)))
    raw = client.request("POST", kube.DANMEPS.path("default"), body=json.dumps(endpoint("lean")).encode())
    state = {"ep": kube.decoder(types.DanmEp).decode(raw)}

    def get() -> object:
        return client.get(kube.DANMEPS, "default", "lean", types.DanmEp)

    def put() -> object:
        state["ep"] = client.update(kube.DANMEPS, state["ep"])
        return state["ep"]

    return {"get": get, "put": put}


def official_cases(kubeconfig: Path) -> dict[str, Callable[[], object]]:
    from kubernetes import client, config

    api = client.CustomObjectsApi(config.new_client_from_config(config_file=str(kubeconfig)))
    state: dict[str, Any] = {
        "ep": api.create_namespaced_custom_object("danm.io", "v1", "default", "danmeps", endpoint("official"))
    }

    def get() -> object:
        return api.get_namespaced_custom_object("danm.io", "v1", "default", "danmeps", "official")

    def put() -> object:
        state["ep"] = api.replace_namespaced_custom_object(
            "danm.io", "v1", "default", "danmeps", "official", state["ep"]
        )
        return state["ep"]

    return {"get": get, "put": put}


def main() -> None:
    parser = argparse.ArgumentParser(description="GET/PUT requests per second, lean vs official client")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        process, kubeconfig = start_server(Path(directory))
        try:
            clients = {"lean": lean_cases(kubeconfig), "official": official_cases(kubeconfig)}
            for cases in clients.values():  # warm-up: connections, decoders, caches
                for action in cases.values():
                    rate(action, 50)
            samples: dict[str, list[float]] = {f"{c}_{v}": [] for c in clients for v in ("get", "put")}
            for round_number in range(options.rounds):
                order = list(clients) if round_number % 2 == 0 else list(reversed(clients))
                for name in order:
                    for verb, action in clients[name].items():
                        samples[f"{name}_{verb}"].append(rate(action, options.requests))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
    figures: dict[str, Any] = {f"{key}_rps": round(statistics.median(values), 1) for key, values in samples.items()}
    for verb in ("get", "put"):
        figures[f"{verb}_ratio"] = round(figures[f"lean_{verb}_rps"] / figures[f"official_{verb}_rps"], 2)
        print(
            f"{verb.upper():>3}: lean {figures[f'lean_{verb}_rps']:8.1f} req/s   "
            f"official {figures[f'official_{verb}_rps']:8.1f} req/s   ratio {figures[f'{verb}_ratio']:.2f}x"
        )
    figures.update({"requests": options.requests, "rounds": options.rounds, "cpus": os.cpu_count()})
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
