"""Running the real `danm` binary as a container runtime does, against an API server.

Used by the host tests (tests/test_cni_*.py) and by the real-kernel tests in user-mode Linux
(tests/kernel/test_cni_ipvlan.py): network namespaces are real (`ip netns`), the API server is
the embedded one, objects are created through the lean client as a user would with kubectl.
"""

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

from danm import ipam, kube
from danm.types import DanmEp, Network, Pod
from testlib import clean_env, danm_binary

NODE = "node-a"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@contextmanager
def netns() -> Iterator[str]:
    """A fresh named network namespace; yields its path; removed afterwards (with its links)."""
    name = unique("danm-t-")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def links_in(path: str) -> set[str]:
    """Link names inside a netns (by path), read with iproute2."""
    name = os.path.basename(path)
    out = subprocess.run(["ip", "-n", name, "-j", "link", "show"], check=True, capture_output=True, text=True).stdout
    return {link["ifname"] for link in json.loads(out or "[]")}


def host_links() -> set[str]:
    out = subprocess.run(["ip", "-j", "link", "show"], check=True, capture_output=True, text=True).stdout
    return {link["ifname"] for link in json.loads(out or "[]")}


def create(client: kube.ApiClient, resource: kube.ApiResource, body: dict[str, Any]) -> dict[str, Any]:
    namespace = body["metadata"].get("namespace", "") if resource.namespaced else ""
    raw = client.request("POST", resource.path(namespace), body=json.dumps(body).encode())
    created: dict[str, Any] = json.loads(raw)
    return created


def ensure_namespace(client: kube.ApiClient, name: str) -> None:
    try:
        create(client, kube.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    except kube.AlreadyExists:
        pass


def initialise_pools(client: kube.ApiClient, net: Network) -> Network:
    """What the webhook does on CREATE: the allocation bitmaps and pools."""
    resource = kube.network_resource(net.kind)
    return client.apply_change(resource, net, ipam.initialise(net))


def create_network(
    client: kube.ApiClient,
    name: str,
    namespace: str = "default",
    kind: str = "DanmNet",
    network_type: str = "ipvlan",
    network_id: str = "",
    allowed_tenants: list[str] | None = None,
    initialise: bool = True,
    **options: Any,
) -> Network:
    resource = kube.network_resource(kind)
    metadata: dict[str, Any] = {"name": name}
    if resource.namespaced:
        metadata["namespace"] = namespace
    spec: dict[str, Any] = {"NetworkID": network_id or name, "NetworkType": network_type, "Options": options}
    if allowed_tenants is not None:
        spec["AllowedTenants"] = allowed_tenants
    body = {"apiVersion": "danm.io/v1", "kind": kind, "metadata": metadata, "spec": spec}
    if resource.namespaced:
        ensure_namespace(client, namespace)
    created = msgspec.json.decode(json.dumps(create(client, resource, body)), type=Network)
    return initialise_pools(client, created) if initialise else created


def create_pod(
    client: kube.ApiClient,
    name: str,
    interfaces: list[dict[str, Any]] | str | None,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    node: str = NODE,
) -> Pod:
    ensure_namespace(client, namespace)
    annotations: dict[str, str] = {}
    if interfaces is not None:
        annotations["danm.io/interfaces"] = interfaces if isinstance(interfaces, str) else json.dumps(interfaces)
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations, "labels": labels or {"app": name}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "pause"}]},
    }
    return msgspec.json.decode(json.dumps(create(client, kube.PODS, body)), type=Pod)


def network(client: kube.ApiClient, name: str, namespace: str = "default", kind: str = "DanmNet") -> Network:
    resource = kube.network_resource(kind)
    return client.get(resource, namespace if resource.namespaced else "", name, Network)


def danmeps(client: kube.ApiClient, namespace: str = "") -> list[DanmEp]:
    found, _ = client.list(kube.DANMEPS, namespace, DanmEp)
    return found


def set_bits(bitmap: str) -> int:
    import base64

    return sum(bin(byte).count("1") for byte in base64.b64decode(bitmap)) if bitmap else 0


class Outcome:
    def __init__(self, returncode: int, stdout: bytes, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def code(self) -> int:
        value: int = self.json()["code"]
        return value

    @property
    def msg(self) -> str:
        value: str = self.json()["msg"]
        return value

    def __repr__(self) -> str:
        return f"Outcome(rc={self.returncode}, stdout={self.stdout!r}, stderr={self.stderr[-2000:]!r})"


class Plugin:
    """The danm CNI plugin as a runtime execs it: config on stdin, CNI_* in the environment."""

    def __init__(self, kubeconfig: Path, workdir: Path, **config: Any) -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.config: dict[str, Any] = {
            "cniVersion": "1.0.0",
            "name": "danm-test",
            "type": "danm",
            "kubeconfig": str(kubeconfig),
            "logFile": str(workdir / "danm.log"),
            "runDir": str(workdir / "run"),
            "stateDir": str(workdir / "state"),
            "nodeName": NODE,
        }
        self.config.update(config)

    def conf_file(self, **overrides: Any) -> Path:
        path = self.workdir / f"{unique('conf-')}.conf"
        path.write_text(json.dumps({**self.config, **overrides}))
        return path

    def run(
        self,
        command: str,
        *,
        container_id: str = "",
        netns: str = "",
        pod: str = "",
        namespace: str = "default",
        args: str | None = None,
        stdin: bytes | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 300,
        **overrides: Any,
    ) -> Outcome:
        cni_args = args if args is not None else (
            f"IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={pod};"
            f"K8S_POD_INFRA_CONTAINER_ID={container_id}"
        )
        variables = {
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container_id,
            "CNI_NETNS": netns,
            "CNI_IFNAME": "eth0",
            "CNI_PATH": str(danm_binary().parent),
            "CNI_ARGS": cni_args,
        }
        variables.update(env or {})
        if command in ("STATUS", "GC"):  # verbs of CNI 1.1.0
            overrides.setdefault("cniVersion", "1.1.0")
        body = stdin if stdin is not None else json.dumps({**self.config, **overrides}).encode()
        done = subprocess.run(
            [str(danm_binary())],
            input=body,
            env=clean_env(**variables),
            capture_output=True,
            timeout=timeout,
        )
        return Outcome(done.returncode, done.stdout, done.stderr.decode(errors="replace"))


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
