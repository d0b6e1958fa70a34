"""IPAM against the API: guarded writes, 409 retries until the deadline, concurrency."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from danm import ipam, kube
from danm.apiserver import ApiServer, load_crds
from danm.types import Network
from testlib import REPO




@pytest.fixture(scope="module")
def client(kubeconfig: Path) -> Iterator[kube.ApiClient]:
    with kube.ApiClient(kube.load_config(str(kubeconfig))) as made:
        yield made


def create_network(client: kube.ApiClient, name: str, kind: str = "DanmNet", **options: Any) -> Network:
    resource = kube.network_resource(kind)
    body: dict[str, Any] = {
        "apiVersion": "danm.io/v1",
        "kind": kind,
        "metadata": {"name": name, **({"namespace": "default"} if resource.namespaced else {})},
        "spec": {"NetworkID": name, "NetworkType": "ipvlan", "Options": options},
    }
    raw = client.request("POST", resource.path("default" if resource.namespaced else ""), body=json.dumps(body).encode())
    return msgspec.json.decode(raw, type=Network)


def deadline(seconds: float = 30.0) -> float:
    return time.monotonic() + seconds


def test_reserve_initialises_lazily_and_persists(client: kube.ApiClient) -> None:
    create_network(client, "lazy", cidr="10.9.0.0/24")  # created without the webhook: no alloc yet
    done = ipam.reserve_on_api(client, "DanmNet", "default", "lazy", "dynamic", "", deadline())
    assert done.persisted and done.conflicts == 0 and done.ip4 == "10.9.0.1/24"
    stored = client.get(kube.DANMNETS, "default", "lazy", Network)
    assert stored.spec.options.alloc and stored.spec.options.allocation_pool is not None
    assert stored.spec.options.allocation_pool.last_ip == "10.9.0.1/24"
    again = ipam.reserve_on_api(client, "DanmNet", "default", "lazy", "none", "", deadline())
    assert not again.persisted and again.ip4 == "none"


def test_cluster_network_and_free(client: kube.ApiClient) -> None:
    create_network(client, "cnet-ipam", "ClusterNetwork", cidr="10.8.0.0/28")
    done = ipam.reserve_on_api(client, "ClusterNetwork", "", "cnet-ipam", "10.8.0.5", "", deadline())
    assert done.ip4 == "10.8.0.5/28"
    with pytest.raises(ipam.AddressInUseError):
        ipam.reserve_on_api(client, "ClusterNetwork", "", "cnet-ipam", "10.8.0.5", "", deadline())
    written, _ = ipam.free_on_api(client, "ClusterNetwork", "", "cnet-ipam", "10.8.0.5/28", "", deadline())
    assert written
    again, _ = ipam.free_on_api(client, "ClusterNetwork", "", "cnet-ipam", "10.8.0.5/28", "", deadline())
    assert not again  # idempotent: nothing to write the second time


def test_expired_deadline_says_so(client: kube.ApiClient) -> None:
    create_network(client, "late", cidr="10.7.0.0/24")
    with pytest.raises(ipam.IpamDeadlineError, match="deadline expired"):
        ipam.reserve_on_api(client, "DanmNet", "default", "late", "dynamic", "", time.monotonic() - 1)


def test_update_keeps_unmodelled_fields(server: ApiServer, client: kube.ApiClient) -> None:
    """A newer CRD may carry Options keys danm does not model: an IPAM write keeps them, and
    the network's annotations and finalizers."""
    crd = json.loads(json.dumps(server.store.get(server.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions"), "", "tenantnetworks.danm.io")))
    options = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["Options"]
    options["x-kubernetes-preserve-unknown-fields"] = True
    client.request("PUT", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/tenantnetworks.danm.io", body=json.dumps(crd).encode())
    body = {
        "apiVersion": "danm.io/v1", "kind": "TenantNetwork",
        "metadata": {"name": "keep", "namespace": "default", "annotations": {"other.example.com/owner": "noc"},
                     "finalizers": ["example.com/hold"]},
        "spec": {"NetworkID": "keep", "Options": {"cidr": "10.6.0.0/24", "futureOption": {"mtu": 9000}}},
    }
    client.request("POST", kube.TENANTNETWORKS.path("default"), body=json.dumps(body).encode())
    done = ipam.reserve_on_api(client, "TenantNetwork", "default", "keep", "dynamic", "", deadline())
    assert done.persisted
    stored = json.loads(client.request("GET", kube.TENANTNETWORKS.path("default", "keep")))
    annotations = stored["metadata"]["annotations"]
    assert annotations.pop(ipam.WRITE_MARK)  # danm's own write mark, next to the foreign one
    assert annotations == {"other.example.com/owner": "noc"}
    assert stored["metadata"]["finalizers"] == ["example.com/hold"]
    assert stored["spec"]["Options"]["futureOption"] == {"mtu": 9000}
    assert stored["spec"]["Options"]["alloc"]


WORKER = """
import json, sys, time
from danm import ipam, kube
client = kube.ApiClient(kube.load_config(sys.argv[1]))
mode = sys.argv[2]
addresses = json.loads(sys.argv[3]) if mode == "free" else []
conflicts = 0
if mode == "reserve":
    for _ in range(50):
        done = ipam.reserve_on_api(client, "DanmNet", "default", "burst", "dynamic", "", time.monotonic() + 120)
        addresses.append(done.ip4)
        conflicts += done.conflicts
else:
    for address in addresses:
        _, met = ipam.free_on_api(client, "DanmNet", "default", "burst", address, "", time.monotonic() + 120)
        conflicts += met
print(json.dumps({"addresses": addresses, "conflicts": conflicts}))
"""


def test_32_processes_reserve_1600_distinct_addresses_then_free_them(client: kube.ApiClient, kubeconfig: Path, tmp_path: Path) -> None:
    initial = create_network(client, "burst", cidr="10.64.0.0/20")
    initial = ipam.initialise(initial)
    client.apply_change(kube.DANMNETS, client.get(kube.DANMNETS, "default", "burst", Network), initial)
    start = client.get(kube.DANMNETS, "default", "burst", Network)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)

    def run(mode: str, payloads: list[str]) -> list[dict[str, Any]]:
        workers = [subprocess.Popen([sys.executable, str(script), str(kubeconfig), mode, payload], stdout=subprocess.PIPE, text=True) for payload in payloads]
        results = []
        for worker in workers:
            out, _ = worker.communicate(timeout=300)
            assert worker.returncode == 0
            results.append(json.loads(out))
        return results

    reserved = run("reserve", ["[]"] * 32)
    addresses = [address for result in reserved for address in result["addresses"]]
    assert len(addresses) == 1600 and len(set(addresses)) == 1600
    stored = client.get(kube.DANMNETS, "default", "burst", Network)
    used4, _ = ipam.set_addresses(stored)
    initially4, _ = ipam.set_addresses(start)
    assert used4 == initially4 | {address.split("/")[0] for address in addresses}
    conflicts = sum(result["conflicts"] for result in reserved)
    print(f"409 retries while reserving 1600 addresses from 32 processes: {conflicts}")
    freed = run("free", [json.dumps(result["addresses"]) for result in reserved])
    print(f"409 retries while freeing: {sum(result['conflicts'] for result in freed)}")
    final = client.get(kube.DANMNETS, "default", "burst", Network)
    assert final.spec.options.alloc == start.spec.options.alloc


def danm(*args: str) -> subprocess.CompletedProcess[str]:
    from testlib import danm_binary

    return subprocess.run([str(danm_binary()), *args], capture_output=True, text=True, timeout=120, check=False)


def endpoint(name: str, network: str, address: str, kind: str = "DanmNet", address6: str = "") -> dict[str, Any]:
    return {
        "apiVersion": "danm.io/v1", "kind": "DanmEp",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"NetworkName": network, "NetworkType": "ipvlan", "EndpointID": name,
                 "Interface": {"Name": "eth1", "Address": address, "AddressIPv6": address6, "MacAddress": "",
                               "proutes": None, "proutes6": None},
                 "Pod": "p", "apiType": kind},
    }


def test_ipam_show(client: kube.ApiClient, kubeconfig: Path) -> None:
    create_network(client, "shown", cidr="10.5.0.0/28", routes={"10.99.0.0/16": "10.5.0.1"}, net6="2001:db8:5::/120")
    ipam.reserve_on_api(client, "DanmNet", "default", "shown", "dynamic", "dynamic", deadline())
    done = danm("ipam", "show", "shown", "--kubeconfig", str(kubeconfig), "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["ipv4"] == {
        "cidr": "10.5.0.0/28", "poolStart": "10.5.0.1", "poolEnd": "10.5.0.14",
        # used counts set bits inside the pool: the gateway .1 and the reservation .2
        "used": 2, "free": 12, "lastIp": "10.5.0.2/28",
    }
    assert shown["ipv6"]["cidr"] == "2001:db8:5::/120" and shown["ipv6"]["used"] == 1
    text = danm("ipam", "show", "shown", "--kubeconfig", str(kubeconfig)).stdout
    assert "used 2" in text and "free 12" in text
    missing = danm("ipam", "show", "nope", "--kubeconfig", str(kubeconfig))
    assert missing.returncode != 0


def test_ipam_check_finds_leaks_and_corruption(client: kube.ApiClient, kubeconfig: Path) -> None:
    create_network(client, "audited", cidr="10.4.0.0/28")
    held = ipam.reserve_on_api(client, "DanmNet", "default", "audited", "dynamic", "", deadline())
    client.request("POST", kube.DANMEPS.path("default"), body=json.dumps(endpoint("ep-held", "audited", held.ip4)).encode())
    leaked = ipam.reserve_on_api(client, "DanmNet", "default", "audited", "dynamic", "", deadline())
    client.request("POST", kube.DANMEPS.path("default"), body=json.dumps(endpoint("ep-lost", "audited", "10.4.0.9/28")).encode())
    done = danm("ipam", "check", "--grace", "0.2", "--kubeconfig", str(kubeconfig))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert f"leak: DanmNet default/audited: {leaked.ip4.split('/')[0]} is marked used but no DanmEp holds it" in lines
    assert "corruption: DanmNet default/audited: 10.4.0.9 of DanmEp default/ep-lost is not marked used" in lines
    for name in ("ep-held", "ep-lost"):
        client.delete(kube.DANMEPS, "default", name)
    ipam.free_on_api(client, "DanmNet", "default", "audited", held.ip4, "", deadline())
    ipam.free_on_api(client, "DanmNet", "default", "audited", leaked.ip4, "", deadline())


RESERVER = """
import json, sys, time
from danm import ipam, kube
client = kube.ApiClient(kube.load_config(sys.argv[1]))
for index in range(100):
    done = ipam.reserve_on_api(client, "DanmNet", "default", "inflight", "dynamic", "", time.monotonic() + 60)
    time.sleep(0.05)  # the bit is set; the DanmEp follows, as in a CNI ADD
    body = {"apiVersion": "danm.io/v1", "kind": "DanmEp", "metadata": {"name": f"inflight-{index}", "namespace": "default"},
            "spec": {"NetworkName": "inflight", "NetworkType": "ipvlan", "EndpointID": f"e{index}",
                     "Interface": {"Name": "eth1", "Address": done.ip4, "AddressIPv6": "", "MacAddress": "", "proutes": None, "proutes6": None},
                     "Pod": "p", "apiType": "DanmNet"}}
    client.request("POST", kube.DANMEPS.path("default"), body=json.dumps(body).encode())
"""


def test_ipam_check_ignores_reservations_in_flight(tmp_path: Path) -> None:
    """A clean cluster (its own server) under concurrent reservations: no leak is reported."""
    api = ApiServer().start()
    try:
        load_crds(api, str(REPO / "deploy" / "crds"))
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(api.kubeconfig())
        with kube.ApiClient(kube.load_config(str(kubeconfig))) as own:
            create_network(own, "inflight", cidr="10.3.0.0/24")
        script = tmp_path / "reserver.py"
        script.write_text(RESERVER)
        writer = subprocess.Popen([sys.executable, str(script), str(kubeconfig)])
        try:
            time.sleep(0.5)
            # without the second pass, a bit set moments before its DanmEp looks like a leak
            hasty = [danm("ipam", "check", "--grace", "0", "--kubeconfig", str(kubeconfig)) for _ in range(3)]
            checks = [danm("ipam", "check", "--grace", "0.5", "--kubeconfig", str(kubeconfig)) for _ in range(3)]
            assert writer.poll() is None, "the writer must still be running during the checks"
        finally:
            assert writer.wait(timeout=120) == 0
        for check in checks:
            assert check.returncode == 0, check.stdout
        assert any(check.returncode == 1 and "leak: DanmNet default/inflight" in check.stdout for check in hasty)
        assert danm("ipam", "check", "--kubeconfig", str(kubeconfig)).returncode == 0
    finally:
        api.stop()


def test_static_ipv6_outside_the_tracked_pool_is_refused_when_a_danmep_holds_it(client: kube.ApiClient) -> None:
    create_network(client, "v6wide", net6="2001:db8:77::/64", allocation_pool_v6={"cidr": "2001:db8:77::/120"})
    outside = "2001:db8:77::1:5"
    first = ipam.reserve_on_api(client, "DanmNet", "default", "v6wide", "", outside, deadline())
    assert first.ip6 == f"{outside}/64" and first.persisted  # the lazily initialised alloc6 is written
    again = ipam.reserve_on_api(client, "DanmNet", "default", "v6wide", "", outside, deadline())
    assert again.ip6 == f"{outside}/64" and not again.persisted  # untracked: no bit, nothing to write
    client.request("POST", kube.DANMEPS.path("default"), body=json.dumps(endpoint("v6-holder", "v6wide", "", address6=f"{outside}/64")).encode())
    with pytest.raises(ipam.AddressInUseError, match="DanmEp default/v6-holder"):
        ipam.reserve_on_api(client, "DanmNet", "default", "v6wide", "", outside, deadline())
    client.delete(kube.DANMEPS, "default", "v6-holder")


class AnswerDroppingProxy:
    """A TCP proxy to the API server that forwards the first PATCH request and then closes the
    client's connection without its answer: the write is applied, its answer lost."""

    def __init__(self, target: tuple[str, int]) -> None:
        import socket
        import threading

        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.dropped = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            swallow = threading.Event()
            threading.Thread(target=self.pump_requests, args=(client, upstream, swallow), daemon=True).start()
            threading.Thread(target=self.pump, args=(upstream, client, swallow), daemon=True).start()

    def pump_requests(self, source: Any, sink: Any, swallow: Any) -> None:
        import time as time_module

        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if data.startswith(b"PATCH") and self.dropped == 0:
                while b"\r\n\r\n" not in data:  # the whole request, body included, goes through
                    data += source.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
                while len(body) < length:
                    more = source.recv(65536)
                    body += more
                    data += more
                swallow.set()  # its answer never reaches the client
                sink.sendall(data)
                self.dropped += 1
                time_module.sleep(0.3)  # the server applies it meanwhile
                source.close()
                sink.close()
                return
            sink.sendall(data)
        for end in (source, sink):
            try:
                end.close()
            except OSError:
                pass

    @staticmethod
    def pump(source: Any, sink: Any, swallow: Any) -> None:
        while True:
            try:
                data = source.recv(65536)
                if not data:
                    break
                if not swallow.is_set():
                    sink.sendall(data)
            except OSError:
                break
        for end in (source, sink):
            try:
                end.close()
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()


def test_a_write_whose_answer_was_lost_is_recognised(server: ApiServer, kubeconfig: Path, tmp_path: Path) -> None:
    """The client repeats the guarded PATCH; the repeat gets 409 because the first was applied.
    Without the write mark IPAM would take that 409 for a foreign write and reserve again: one
    address leaked, or a static address refused as in use."""
    import urllib.parse

    with kube.ApiClient(kube.load_config(str(kubeconfig))) as direct:
        create_network(direct, "lost-answer", cidr="10.7.0.0/24")
        before = direct.get(kube.DANMNETS, "default", "lost-answer", Network).spec.options.alloc
    url = urllib.parse.urlsplit(server.url)
    proxy = AnswerDroppingProxy((url.hostname or "127.0.0.1", url.port or 80))
    try:
        document = json.loads(kubeconfig.read_text())
        document["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{proxy.port}"
        proxied = tmp_path / "proxied"
        proxied.write_text(json.dumps(document))
        with kube.ApiClient(kube.load_config(str(proxied))) as client:
            done = ipam.reserve_on_api(client, "DanmNet", "default", "lost-answer", "10.7.0.9", "", deadline())
        assert proxy.dropped == 1
        assert done.persisted and done.ip4 == "10.7.0.9/24" and done.conflicts == 0
        with kube.ApiClient(kube.load_config(str(kubeconfig))) as direct:
            stored = direct.get(kube.DANMNETS, "default", "lost-answer", Network)
        allocated, _ = ipam.set_addresses(stored)
        infrastructure, _ = ipam.infrastructure_addresses(stored)
        assert allocated - infrastructure == {"10.7.0.9"}  # exactly one address, the one asked for
        assert before == ""  # (created without the webhook: the reservation initialised it)
    finally:
        proxy.close()
