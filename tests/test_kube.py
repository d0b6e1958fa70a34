"""danm.kube against the embedded API server, and against scripted loopback servers for the
failures the API server cannot produce on demand (429, 5xx, resets, refused connections)."""

import base64
import datetime
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pytest

from danm import kube
from danm.apiserver import ApiServer
from danm.types import DanmEp, EndpointSpec, Network, NetworkSpec, ObjectMeta
from testlib import load_fixture

CONFIGMAPS = kube.ApiResource("", "v1", "configmaps", True, "ConfigMap")
TESTNETS = kube.ApiResource("test.danm.io", "v1", "testnets", True, "TestNet")

# A network-shaped custom resource whose spec keeps keys its schema does not declare.
TESTNET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "testnets.test.danm.io"},
    "spec": {
        "group": "test.danm.io",
        "scope": "Namespaced",
        "names": {"plural": "testnets", "singular": "testnet", "kind": "TestNet"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                    }
                },
            }
        ],
    },
}




@pytest.fixture(scope="module")
def client(kubeconfig: Path) -> Iterator[kube.ApiClient]:
    with kube.ApiClient(kube.load_config(str(kubeconfig)), timeout=10) as made:
        yield made


def client_for(api: ApiServer, tmp_path: Path, **options: Any) -> kube.ApiClient:
    path = tmp_path / f"config-{api.address[1]}"
    path.write_text(api.kubeconfig())
    return kube.ApiClient(kube.load_config(str(path)), **options)


def write_json(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


def kubeconfig_document(server: str, user: dict[str, Any], cluster: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u", "namespace": "work"}}],
        "current-context": "ctx",
    }


def danmep(name: str, labels: dict[str, str] | None = None) -> DanmEp:
    spec = msgspec.convert(load_fixture("danmep.json")["spec"], EndpointSpec)
    return DanmEp(metadata=ObjectMeta(name=name, namespace="default", labels=labels), spec=spec)


# --- configuration


def test_load_config_lookup_order(tmp_path: Path) -> None:
    explicit = write_json(tmp_path / "explicit", kubeconfig_document("http://explicit:1", {"token": "a"}))
    assert kube.load_config(str(explicit), environ={}).server == "http://explicit:1"

    # $KUBECONFIG: missing entries skipped, files merged, the first definition of a name wins
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    first_dir.mkdir()
    second_dir.mkdir()
    (second_dir / "token").write_text("from-file\n")
    first = write_json(first_dir / "config", {"current-context": "second", "clusters": [{"name": "c", "cluster": {"server": "https://first:6443"}}]})
    second = write_json(
        second_dir / "config",
        {
            "current-context": "ignored",
            "clusters": [{"name": "c", "cluster": {"server": "https://second:6443"}}],
            "users": [{"name": "u", "user": {"tokenFile": "token"}}],
            "contexts": [{"name": "second", "context": {"cluster": "c", "user": "u"}}],
        },
    )
    listed = f"{tmp_path / 'missing'}{os.pathsep}{first}{os.pathsep}{second}"
    merged = kube.load_config(environ={"KUBECONFIG": listed, "HOME": str(tmp_path)})
    assert merged.server == "https://first:6443"
    assert merged.token_file == str(second_dir / "token")  # relative to the file that named it
    assert merged.bearer_token() == "from-file"
    assert merged.namespace == "default"

    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    write_json(home / ".kube" / "config", kubeconfig_document("https://home:6443", {}))
    assert kube.load_config(environ={"HOME": str(home)}).server == "https://home:6443"
    assert kube.load_config(environ={"HOME": str(home)}).namespace == "work"

    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text("sa-token")
    in_cluster = {"HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    config = kube.load_config(environ=in_cluster, serviceaccount_dir=str(account))
    assert config.server == "https://[fd00::1]:443" and config.bearer_token() == "sa-token"
    assert config.ca_file == "" and config.namespace == "default"
    home_too = {**in_cluster, "HOME": str(home)}
    assert kube.load_config(environ=home_too, serviceaccount_dir=str(account)).server == "https://home:6443"
    # $KUBECONFIG replaces ~/.kube/config: with only missing files there, in-cluster is next
    missing_only = {**home_too, "KUBECONFIG": str(tmp_path / "missing")}
    assert kube.load_config(environ=missing_only, serviceaccount_dir=str(account)).server == "https://[fd00::1]:443"

    with pytest.raises(kube.ConfigError):
        kube.load_config(environ={"HOME": str(tmp_path)})
    with pytest.raises(kube.ConfigError):
        kube.load_config(str(tmp_path / "nope"))
    with pytest.raises(kube.ConfigError):
        kube.load_config(str(explicit), context="other", environ={})


def test_yaml_kubeconfig_with_relative_files_and_data(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not used here")
    (tmp_path / "token").write_text("tok\n")
    (tmp_path / "config").write_text(
        "apiVersion: v1\n"
        "kind: Config\n"
        "current-context: ctx\n"
        "contexts:\n- name: ctx\n  context: {cluster: c, user: u, namespace: danm-system}\n"
        "clusters:\n- name: c\n  cluster:\n    server: https://[::1]:6443/prefix/\n"
        "    certificate-authority: ca.pem\n    tls-server-name: kubernetes.default.svc\n"
        "users:\n- name: u\n  user:\n    tokenFile: token\n"
        f"    client-key-data: {base64.b64encode(b'KEY').decode()}\n"
    )
    config = kube.load_config(str(tmp_path / "config"))
    assert config.ca_file == str(tmp_path / "ca.pem")
    assert config.tls_server_name == "kubernetes.default.svc"
    assert config.key_data == b"KEY"
    assert config.namespace == "danm-system"
    assert config.bearer_token() == "tok"
    assert config.endpoint == ("https", "::1", 6443, "/prefix")
    with pytest.raises(kube.ConfigError):
        kube.ClusterConfig("https://x", insecure=True, ca_data=b"pem")
    with pytest.raises(kube.ConfigError):
        kube.ClusterConfig("https://x", token="a\r\nInjected: yes")


def test_start_up_imports_stay_lean(kubeconfig: Path) -> None:
    """A JSON kubeconfig and a request load neither yaml, kubernetes, http.client, ssl, logging..."""
    code = (
        "import sys\n"
        "from danm import kube\n"
        "client = kube.ApiClient(kube.load_config(sys.argv[1]))\n"
        "assert client.get(kube.NAMESPACES, '', 'default', dict)['metadata']['name'] == 'default'\n"
        "heavy = ('kubernetes', 'yaml', 'asyncio', 'typer', 'http.client', 'email', 'urllib3', 'ssl', 'logging', 'danm.patch')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(kubeconfig)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- addressing


def test_resource_paths_are_percent_encoded() -> None:
    assert kube.PODS.path("ns", "a b/c") == "/api/v1/namespaces/ns/pods/a%20b%2Fc"
    assert kube.PODS.path("ns", "p", "status") == "/api/v1/namespaces/ns/pods/p/status"
    assert kube.PODS.path() == "/api/v1/pods"
    assert kube.CLUSTERNETWORKS.path("ignored", "x") == "/apis/danm.io/v1/clusternetworks/x"
    assert kube.NADS.path("ns") == "/apis/k8s.cni.cncf.io/v1/namespaces/ns/network-attachment-definitions"
    assert kube.network_resource("") is kube.DANMNETS and kube.network_resource("TenantNetwork") is kube.TENANTNETWORKS
    assert kube.query_string({"labelSelector": "app in (a,b),!x"}) == "labelSelector=app%20in%20%28a%2Cb%29%2C%21x"
    with pytest.raises(ValueError):
        kube.DANMEPS.path("", "ep")


# --- typed verbs and errors


def test_typed_crud_of_danmnets(client: kube.ApiClient) -> None:
    spec = msgspec.convert({"NetworkID": "crud", "NetworkType": "ipvlan", "Options": {"cidr": "10.1.0.0/24", "vlan": 7}}, NetworkSpec)
    made = client.create(kube.DANMNETS, Network(metadata=ObjectMeta(name="crud", namespace="default", labels={"tier": "a"}), spec=spec))
    assert isinstance(made, Network) and made.metadata.uid and made.metadata.resource_version
    assert made.spec == spec
    got = client.get(kube.DANMNETS, "default", "crud", Network)
    assert got.metadata.uid == made.metadata.uid
    items, version = client.list(kube.DANMNETS, "default", Network, label_selector="tier in (a,b)")
    assert [item.metadata.name for item in items] == ["crud"] and int(version) >= int(made.metadata.resource_version)
    assert client.list(kube.DANMNETS, "default", Network, label_selector="tier notin (a)")[0] == []
    as_dict = client.get(kube.DANMNETS, "default", "crud", dict)
    assert as_dict["kind"] == "DanmNet"
    answer = client.delete(kube.DANMNETS, "default", "crud")
    assert answer.get("status") == "Success" or answer.get("kind") == "DanmNet"
    with pytest.raises(kube.NotFound) as raised:
        client.get(kube.DANMNETS, "default", "crud", Network)
    assert raised.value.code == 404 and raised.value.reason == "NotFound"
    assert raised.value.status["details"]["name"] == "crud"


def test_danmep_create_update_conflict_and_paged_list(client: kube.ApiClient) -> None:
    created = [client.create(kube.DANMEPS, danmep(f"page-{index}", {"set": "paged"})) for index in range(5)]
    names, version = client.list(kube.DANMEPS, "default", DanmEp, label_selector="set=paged", limit=2)
    assert [ep.metadata.name for ep in names] == [f"page-{index}" for index in range(5)]
    assert version

    first = created[0]
    moved = msgspec.structs.replace(first, spec=msgspec.structs.replace(first.spec, host="worker-2"))
    updated = client.update(kube.DANMEPS, moved)
    assert updated.spec.host == "worker-2" and updated.metadata.resource_version != first.metadata.resource_version
    with pytest.raises(kube.Conflict) as stale:
        client.update(kube.DANMEPS, moved)  # moved still carries the old resourceVersion
    assert stale.value.code == 409 and stale.value.reason == "Conflict"
    assert not isinstance(stale.value, kube.AlreadyExists)

    with pytest.raises(kube.AlreadyExists) as exists:
        client.create(kube.DANMEPS, danmep("page-0"))
    assert exists.value.code == 409 and not isinstance(exists.value, kube.Conflict)

    with pytest.raises(kube.Conflict):
        client.delete(kube.DANMEPS, "default", "page-0", preconditions={"resourceVersion": first.metadata.resource_version})
    client.delete(kube.DANMEPS, "default", "page-0", preconditions={"uid": updated.metadata.uid})
    with pytest.raises(kube.Invalid) as invalid:
        client.patch(kube.DANMEPS, "default", "page-1", [{"op": "test", "path": "/spec/Host", "value": "x"}], DanmEp)
    assert invalid.value.code == 422
    with pytest.raises(ValueError):
        client.update(kube.DANMEPS, danmep("no-version"))
    for index in range(1, 5):
        client.delete(kube.DANMEPS, "default", f"page-{index}")


def test_apply_change_keeps_unmodelled_fields(client: kube.ApiClient) -> None:
    client.create(kube.ApiResource("apiextensions.k8s.io", "v1", "customresourcedefinitions", False), TESTNET_CRD)
    body: dict[str, Any] = {
        "apiVersion": "test.danm.io/v1",
        "kind": "TestNet",
        "metadata": {
            "name": "keep",
            "namespace": "default",
            "annotations": {"other.example.com/owner": "someone"},
            "finalizers": ["example.com/hold"],
        },
        "spec": {"NetworkID": "keep", "Options": {"vlan": 10, "futureOption": "x"}, "futureKey": {"a": [1, 2]}},
    }
    stored = client.create(TESTNETS, body)
    assert stored["spec"]["futureKey"] == {"a": [1, 2]}  # the test CRD really keeps it
    old = client.get(TESTNETS, "default", "keep", Network)
    options = msgspec.structs.replace(old.spec.options, vlan=20, cidr="10.2.0.0/24")
    new = msgspec.structs.replace(
        old,
        spec=msgspec.structs.replace(old.spec, options=options),
        metadata=msgspec.structs.replace(old.metadata, labels={"danm.io/touched": "yes"}),
    )
    result = client.apply_change(TESTNETS, old, new)
    assert isinstance(result, Network) and result.spec.options.vlan == 20
    after = client.get(TESTNETS, "default", "keep", dict)
    assert after["metadata"]["annotations"] == {"other.example.com/owner": "someone"}
    assert after["metadata"]["finalizers"] == ["example.com/hold"]
    assert after["metadata"]["labels"] == {"danm.io/touched": "yes"}
    assert after["spec"]["futureKey"] == {"a": [1, 2]}
    assert after["spec"]["Options"] == {"vlan": 20, "cidr": "10.2.0.0/24", "futureOption": "x"}

    # old is stale now: the guarded patch is refused, and nothing changes
    with pytest.raises(kube.Conflict):
        client.apply_change(TESTNETS, old, msgspec.structs.replace(old, spec=msgspec.structs.replace(old.spec, network_id="lost")))
    assert client.get(TESTNETS, "default", "keep", Network).spec.network_id == "keep"

    # nothing modelled changed: no request at all (a closed client would fail any request)
    closed = kube.ApiClient(client.config)
    closed.close()
    assert closed.apply_change(TESTNETS, result, result) is result

    client.patch(TESTNETS, "default", "keep", {"metadata": {"finalizers": None}}, dict)
    client.delete(TESTNETS, "default", "keep")
    with pytest.raises(kube.NotFound):
        client.get(TESTNETS, "default", "keep", dict)


# --- watches


def test_watch_resumes_from_a_resource_version(client: kube.ApiClient) -> None:
    _, since = client.list(kube.DANMEPS, "default", DanmEp)
    for name in ("w0", "w1", "w2"):
        client.create(kube.DANMEPS, danmep(name))
    client.delete(kube.DANMEPS, "default", "w0")
    events = list(client.watch(kube.DANMEPS, "default", DanmEp, since, timeout_seconds=1, reconnect=False))
    seen = [(event.type, event.name) for event in events]
    assert seen == [("ADDED", "w0"), ("ADDED", "w1"), ("ADDED", "w2"), ("DELETED", "w0"), ("BOOKMARK", "")]
    assert all(isinstance(event.object, DanmEp) for event in events[:4])
    assert events[-1].resource_version == events[3].resource_version

    # from the second event on: exactly the rest
    rest = client.watch(kube.DANMEPS, "default", DanmEp, events[1].resource_version, timeout_seconds=1, reconnect=False)
    assert [(event.type, event.name) for event in rest][:2] == [("ADDED", "w2"), ("DELETED", "w0")]

    # a stream that ends is resumed from the last version: nothing twice, nothing lost
    resumed: list[tuple[str, str]] = []
    for event in client.watch(kube.DANMEPS, "default", DanmEp, since, timeout_seconds=1, iterations=2):
        resumed.append((event.type, event.name))
        if event.type == kube.BOOKMARK and resumed.count(("BOOKMARK", "")) == 1:
            client.create(kube.DANMEPS, danmep("late"))
    assert resumed == seen + [("ADDED", "late"), ("BOOKMARK", "")]
    for name in ("w1", "w2", "late"):
        client.delete(kube.DANMEPS, "default", name)


def test_watch_stops_on_its_event_and_on_close(kubeconfig: Path) -> None:
    with kube.ApiClient(kube.load_config(str(kubeconfig))) as watcher:
        stop = threading.Event()
        threading.Timer(0.3, stop.set).start()
        started = time.monotonic()
        assert list(watcher.watch(kube.DANMEPS, "kube-public", DanmEp, "", stop=stop)) == []
        assert time.monotonic() - started < 3
    closing = kube.ApiClient(kube.load_config(str(kubeconfig)))
    threading.Timer(0.3, closing.close).start()
    started = time.monotonic()
    assert list(closing.watch(kube.DANMEPS, "kube-public", DanmEp, "")) == []
    assert time.monotonic() - started < 3


def test_expired_version_raises_gone_and_list_and_watch_relists(tmp_path: Path) -> None:
    api = ApiServer(history=2).start()
    try:
        with client_for(api, tmp_path, timeout=10) as client:
            _, since = client.list(CONFIGMAPS, "default", dict)
            for index in range(4):
                client.create(CONFIGMAPS, {"metadata": {"name": f"e{index}", "namespace": "default"}})
            with pytest.raises(kube.Gone) as raised:
                list(client.watch(CONFIGMAPS, "default", dict, since, timeout_seconds=2))
            assert raised.value.code == 410 and raised.value.reason == "Expired"

            seen: list[tuple[str, str]] = []
            listings = 0
            for event in client.list_and_watch(CONFIGMAPS, "default", dict, timeout_seconds=5):
                seen.append((event.type, event.name))
                if event.type == kube.LISTED:
                    listings += 1
                    if listings == 1:  # overflow the watch history before the watch starts
                        client.delete(CONFIGMAPS, "default", "e0")
                        for index in range(4, 7):
                            client.create(CONFIGMAPS, {"metadata": {"name": f"e{index}", "namespace": "default"}})
                    else:
                        client.create(CONFIGMAPS, {"metadata": {"name": "live", "namespace": "default"}})
                if event.type == kube.ADDED:
                    assert isinstance(event.object, dict) and event.object["metadata"]["name"] == "live"
                    break
            expected = [("SYNC", f"e{index}") for index in range(4)] + [("LISTED", "")]
            expected += [("SYNC", f"e{index}") for index in range(1, 7)] + [("DELETED", "e0"), ("LISTED", "")]
            assert seen == expected + [("ADDED", "live")]
    finally:
        api.stop()


# --- authentication


def test_bearer_token_auth(tmp_path: Path) -> None:
    api = ApiServer(token="s3cret").start()
    try:
        with client_for(api, tmp_path) as client:
            assert client.get(kube.NAMESPACES, "", "default", dict)["metadata"]["name"] == "default"
        anonymous = kube.ApiClient(kube.ClusterConfig(api.url))
        with pytest.raises(kube.Unauthorized) as raised:
            anonymous.get(kube.NAMESPACES, "", "default", dict)
        assert raised.value.code == 401 and raised.value.reason == "Unauthorized"
    finally:
        api.stop()


def test_in_cluster_token_is_reread_after_rotation(tmp_path: Path) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("first-token")
    (account / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (account / "namespace").write_text("danm-system\n")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    config = kube.load_incluster_config(str(account), env)
    assert config.server == "https://10.96.0.1:443"
    assert config.ca_file == str(account / "ca.crt") and config.namespace == "danm-system"
    api = ApiServer(token="first-token").start()
    try:
        config.server = api.url  # the embedded server speaks plain HTTP
        with kube.ApiClient(config) as client:
            client.get(kube.NAMESPACES, "", "default", dict)
            api.token = "second-token"  # rotation: the kubelet rewrites the projected token
            (account / "token").write_text("second-token\n")
            client.get(kube.NAMESPACES, "", "default", dict)  # 401, re-read, repeated
            assert config.bearer_token() == "second-token"
            api.token = "third-token"  # a token the file does not have: 401 stands
            with pytest.raises(kube.Unauthorized):
                client.get(kube.NAMESPACES, "", "default", dict)
    finally:
        api.stop()
    with pytest.raises(kube.ConfigError):
        kube.load_incluster_config(str(tmp_path / "missing"), env)
    with pytest.raises(kube.ConfigError):
        kube.load_incluster_config(str(account), {})


EXEC_PLUGIN = """
import json, os, sys, datetime
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
assert info["kind"] == "ExecCredential" and info["spec"]["interactive"] is False, info
with open(os.environ["CALLS"], "a") as calls:
    calls.write(json.dumps(info) + "\\n")
lifetime = float(os.environ["LIFETIME"])
expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=lifetime)
with open(os.environ["TOKEN_FILE"]) as handle:
    token = handle.read().strip()
print(json.dumps({
    "apiVersion": info["apiVersion"], "kind": "ExecCredential",
    "status": {"token": token, "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")},
}))
"""


def exec_kubeconfig(tmp_path: Path, server: str, lifetime: float) -> Path:
    plugin = tmp_path / "plugin.py"
    plugin.write_text(EXEC_PLUGIN)
    env = [
        {"name": "CALLS", "value": str(tmp_path / f"calls-{lifetime}")},
        {"name": "LIFETIME", "value": str(lifetime)},
        {"name": "TOKEN_FILE", "value": str(tmp_path / "plugin-token")},
    ]
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(plugin)],
            "env": env,
            "interactiveMode": "Never",
            "provideClusterInfo": True,
        }
    }
    return write_json(tmp_path / f"exec-{lifetime}.json", kubeconfig_document(server, user))


def test_exec_credential_plugin(tmp_path: Path) -> None:
    api = ApiServer(token="exec-token").start()
    (tmp_path / "plugin-token").write_text("exec-token")
    try:
        with kube.ApiClient(kube.load_config(str(exec_kubeconfig(tmp_path, api.url, 3600)))) as client:
            for _ in range(3):
                client.get(kube.NAMESPACES, "", "default", dict)
            calls = (tmp_path / "calls-3600").read_text().splitlines()
            assert len(calls) == 1  # cached until it expires
            assert json.loads(calls[0])["spec"]["cluster"]["server"] == api.url
            api.token = "rotated"
            (tmp_path / "plugin-token").write_text("rotated")
            client.get(kube.NAMESPACES, "", "default", dict)  # 401: the plugin runs again
            assert len((tmp_path / "calls-3600").read_text().splitlines()) == 2
        # a token about to expire is fetched anew for every request
        with kube.ApiClient(kube.load_config(str(exec_kubeconfig(tmp_path, api.url, 5)))) as short:
            short.get(kube.NAMESPACES, "", "default", dict)
            short.get(kube.NAMESPACES, "", "default", dict)
            assert len((tmp_path / "calls-5").read_text().splitlines()) == 2
    finally:
        api.stop()
    failing = kubeconfig_document("http://127.0.0.1:1", {"exec": {"command": sys.executable, "args": ["-c", "import sys; sys.exit(3)"]}})
    with pytest.raises(kube.ConfigError, match="exited 3"):
        kube.load_config(str(write_json(tmp_path / "failing.json", failing))).bearer_token()


def test_oidc_auth_provider_through_the_kubernetes_package(tmp_path: Path) -> None:
    def segment(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")

    expiry = int(time.time()) + 3600
    claims: dict[str, Any] = {"iss": "https://issuer.invalid", "sub": "danm", "exp": expiry}
    token = f"{segment({'alg': 'none'})}.{segment(claims)}.c2ln"
    while len(token.split(".")[1]) % 4 == 1:  # the client's loader refuses 3 padding characters
        claims["sub"] += "x"
        token = f"{segment({'alg': 'none'})}.{segment(claims)}.c2ln"
    api = ApiServer(token=token).start()
    try:
        provider = {"name": "oidc", "config": {"client-id": "danm", "idp-issuer-url": "https://issuer.invalid", "id-token": token}}
        path = write_json(tmp_path / "oidc.json", kubeconfig_document(api.url, {"auth-provider": provider}))
        with kube.ApiClient(kube.load_config(str(path))) as client:
            assert client.get(kube.NAMESPACES, "", "default", dict)["metadata"]["name"] == "default"
        assert kube.load_config(str(path)).bearer_token() == token
        assert kube.oidc_token(json.loads(path.read_text()), "ctx") == (token, float(expiry))
    finally:
        api.stop()


# --- TLS


def test_https_with_the_ca_from_the_kubeconfig(tmp_path: Path) -> None:
    api = ApiServer(tls=True, token="tls-token").start()
    try:
        document = json.loads(api.kubeconfig())
        with client_for(api, tmp_path) as client:
            assert client.scheme == "https"
            assert client.get(kube.NAMESPACES, "", "default", dict)["metadata"]["name"] == "default"
        cluster = document["clusters"][0]["cluster"]
        cluster["tls-server-name"] = "kubernetes.default.svc"
        named = kube.config_from_kubeconfig(document)
        assert kube.ApiClient(named).get(kube.NAMESPACES, "", "default", dict)
        cluster["tls-server-name"] = "wrong.invalid"
        with pytest.raises(kube.ConnectionFailed) as wrong:
            kube.ApiClient(kube.config_from_kubeconfig(document), backoff=0.01).get(kube.NAMESPACES, "", "default", dict)
        assert wrong.value.attempts == 1  # verification failures are not retried
        del cluster["tls-server-name"], cluster["certificate-authority-data"]
        with pytest.raises(kube.ConnectionFailed):
            kube.ApiClient(kube.config_from_kubeconfig(document), backoff=0.01).get(kube.NAMESPACES, "", "default", dict)
        cluster["insecure-skip-tls-verify"] = True
        assert kube.ApiClient(kube.config_from_kubeconfig(document)).get(kube.NAMESPACES, "", "default", dict)
    finally:
        api.stop()


def make_pki() -> dict[str, bytes]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (CN danm-client), PEM."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())

    def issue(subject: x509.Name, key: ec.EllipticCurvePrivateKey, ca: bool, san: x509.SubjectAlternativeName | None) -> bytes:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(name("test-ca"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    server_key = ec.generate_private_key(ec.SECP256R1())
    client_key = ec.generate_private_key(ec.SECP256R1())
    return {
        "ca": issue(name("test-ca"), ca_key, True, None),
        "server": issue(name("server"), server_key, False, x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])),
        "server_key": key_pem(server_key),
        "client": issue(name("danm-client"), client_key, False, None),
        "client_key": key_pem(client_key),
    }


def test_client_certificate_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pki = make_pki()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    (tmp_path / "server.pem").write_bytes(pki["server"] + pki["server_key"])
    context.load_cert_chain(str(tmp_path / "server.pem"))
    context.load_verify_locations(cadata=pki["ca"].decode())
    context.verify_mode = ssl.CERT_REQUIRED
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with Scripted([Reply(echo_peer=True)], tls=context) as scripted:
        user = {
            "client-certificate-data": base64.b64encode(pki["client"]).decode(),
            "client-key-data": base64.b64encode(pki["client_key"]).decode(),
        }
        ca = {"certificate-authority-data": base64.b64encode(pki["ca"]).decode()}
        document = kubeconfig_document(f"https://127.0.0.1:{scripted.port}", user, ca)
        with kube.ApiClient(kube.config_from_kubeconfig(document)) as client:
            assert client.get(kube.NAMESPACES, "", "x", dict) == {"peer": "danm-client"}
    assert list(scratch.iterdir()) == []  # the key was on disk only while ssl loaded it


# --- scripted servers: retries, deadlines, keep-alive


class Reply:
    def __init__(
        self,
        status: int = 200,
        body: Any = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        hang_up: bool = False,
        close_after: bool = False,
        chunks: list[bytes] | None = None,
        echo_peer: bool = False,
    ) -> None:
        self.status = status
        self.body = body if body is not None else {"kind": "Thing", "metadata": {"name": "x"}}
        self.headers = headers or {}
        self.delay = delay
        self.hang_up = hang_up  # read the request, close without answering
        self.close_after = close_after  # close after answering, without saying so
        self.chunks = chunks  # a chunked 200 (a watch stream)
        self.echo_peer = echo_peer


def status_body(code: int, reason: str, message: str = "scripted") -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message}


class ScriptedHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    scripted: "Scripted"

    def get_request(self) -> tuple[Any, Any]:
        accepted = super().get_request()
        self.scripted.connections += 1
        return accepted


class ScriptedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        self.answer()

    def do_POST(self) -> None:
        self.answer()

    def do_PUT(self) -> None:
        self.answer()

    def do_PATCH(self) -> None:
        self.answer()

    def do_DELETE(self) -> None:
        self.answer()

    def answer(self) -> None:
        server = self.server
        assert isinstance(server, ScriptedHttpServer)
        scripted = server.scripted
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        scripted.requests.append((self.command, self.path))
        reply = scripted.script.pop(0) if len(scripted.script) > 1 else scripted.script[0]
        if reply.delay:
            time.sleep(reply.delay)
        if reply.hang_up:
            self.close_connection = True
            return
        if reply.chunks is not None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in reply.chunks:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        body = reply.body
        if reply.echo_peer:
            peer: Any = self.connection.getpeercert()
            body = {"peer": dict(item[0] for item in peer["subject"])["commonName"]}
        data = json.dumps(body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        if reply.close_after:
            self.close_connection = True


class Scripted:
    """A loopback HTTP/1.1 server answering from a script (the last reply repeats)."""

    def __init__(self, script: list[Reply], tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[tuple[str, str]] = []
        self.httpd = ScriptedHttpServer(("127.0.0.1", 0), ScriptedHandler)
        self.httpd.scripted = self
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> "Scripted":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def client(self, **options: Any) -> kube.ApiClient:
        options.setdefault("backoff", 0.01)
        return kube.ApiClient(kube.ClusterConfig(self.url), **options)


def test_429_is_retried_after_retry_after_seconds() -> None:
    throttled = Reply(429, status_body(429, "TooManyRequests"), {"Retry-After": "1"})
    with Scripted([throttled, Reply()]) as scripted:
        started = time.monotonic()
        assert scripted.client().create(CONFIGMAPS, {"metadata": {"name": "x", "namespace": "ns"}}) == Reply().body
        assert 1.0 <= time.monotonic() - started < 5
        assert [method for method, _ in scripted.requests] == ["POST", "POST"]  # even a create
    with Scripted([throttled]) as scripted:
        with pytest.raises(kube.TooManyRequests) as raised:
            scripted.client(retries=0).get(CONFIGMAPS, "ns", "x", dict)
        assert raised.value.retry_after == 1.0 and raised.value.code == 429


def test_5xx_retries_depend_on_replay_safety() -> None:
    unavailable = Reply(503, status_body(503, "ServiceUnavailable"))
    with Scripted([unavailable, unavailable, Reply()]) as scripted:
        assert scripted.client().get(CONFIGMAPS, "ns", "x", dict)["metadata"]["name"] == "x"
        assert len(scripted.requests) == 3
    with Scripted([unavailable, Reply()]) as scripted:
        with pytest.raises(kube.ServerError) as raised:
            scripted.client().create(CONFIGMAPS, {"metadata": {"name": "x", "namespace": "ns"}})
        assert raised.value.code == 503 and len(scripted.requests) == 1  # a create may have happened
    with Scripted([unavailable, Reply()]) as scripted:  # a resourceVersion-guarded patch is replay-safe
        guarded = [{"op": "replace", "path": "/metadata/resourceVersion", "value": "5"}]
        scripted.client().patch(CONFIGMAPS, "ns", "x", guarded, dict)
        assert len(scripted.requests) == 2
    with Scripted([Reply(500, status_body(500, "InternalError"), {"Retry-After": "0"}), Reply()]) as scripted:
        scripted.client().create(CONFIGMAPS, {"metadata": {"name": "x", "namespace": "ns"}})
        assert len(scripted.requests) == 2  # the server said so
    with Scripted([unavailable]) as scripted:
        with pytest.raises(kube.ServerError):
            scripted.client(retries=3).get(CONFIGMAPS, "ns", "x", dict)
        assert len(scripted.requests) == 4


def test_deadline_stops_retries() -> None:
    with Scripted([Reply(429, status_body(429, "TooManyRequests"), {"Retry-After": "5"})]) as scripted:
        started = time.monotonic()
        with pytest.raises(kube.DeadlineExceeded):
            scripted.client().get(CONFIGMAPS, "ns", "x", dict, deadline=started + 1.0)
        assert time.monotonic() - started < 0.9 and len(scripted.requests) == 1
    with Scripted([Reply(delay=3.0)]) as scripted:
        started = time.monotonic()
        with pytest.raises(kube.DeadlineExceeded):
            scripted.client().get(CONFIGMAPS, "ns", "x", dict, deadline=started + 0.5)
        assert 0.4 < time.monotonic() - started < 2.0
    with Scripted([Reply()]) as scripted:
        with pytest.raises(kube.DeadlineExceeded):
            scripted.client().get(CONFIGMAPS, "ns", "x", dict, deadline=time.monotonic() - 1)
        assert scripted.requests == []


def test_connection_refused_after_bounded_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = kube.ApiClient(kube.ClusterConfig(f"http://127.0.0.1:{port}"), retries=3, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(kube.ConnectionFailed) as raised:
        client.create(CONFIGMAPS, {"metadata": {"name": "x", "namespace": "ns"}})  # never sent: retried
    assert raised.value.attempts == 4 and time.monotonic() - started < 2


def test_timeout_and_hang_up_after_sending() -> None:
    with Scripted([Reply(hang_up=True), Reply()]) as scripted:
        with pytest.raises(kube.ConnectionFailed, match="may have been applied"):
            scripted.client().create(CONFIGMAPS, {"metadata": {"name": "x", "namespace": "ns"}})
        assert len(scripted.requests) == 1
    with Scripted([Reply(hang_up=True), Reply()]) as scripted:
        assert scripted.client().get(CONFIGMAPS, "ns", "x", dict)
        assert len(scripted.requests) == 2
    with Scripted([Reply(delay=1.0), Reply()]) as scripted:
        with pytest.raises(kube.ConnectionFailed) as raised:
            scripted.client(timeout=0.3).create(CONFIGMAPS, {"metadata": {"name": "x", "namespace": "ns"}})
        assert raised.value.attempts == 1


def test_keep_alive_reuses_one_connection() -> None:
    with Scripted([Reply()]) as scripted:
        client = scripted.client()
        for _ in range(25):
            client.get(CONFIGMAPS, "ns", "x", dict)
        client.create(CONFIGMAPS, {"metadata": {"name": "x", "namespace": "ns"}})
        assert scripted.connections == 1 and client.connections_opened == 1 and len(scripted.requests) == 26


def test_connections_closed_by_the_server_are_replaced() -> None:
    with Scripted([Reply(close_after=True)]) as scripted:
        client = scripted.client()
        for _ in range(3):
            client.get(CONFIGMAPS, "ns", "x", dict)
            time.sleep(0.05)  # idle: the server's close arrives
            client.create(CONFIGMAPS, {"metadata": {"name": "x", "namespace": "ns"}})  # not retried, must not fail
            time.sleep(0.05)
        assert scripted.connections == 6 and len(scripted.requests) == 6


def test_paged_list_restarts_when_the_continue_token_expires() -> None:
    page = Reply(body={"metadata": {"resourceVersion": "7", "continue": "token-1"}, "items": [{"metadata": {"name": "a"}}]})
    expired = Reply(410, status_body(410, "Expired"))
    full = Reply(body={"metadata": {"resourceVersion": "9"}, "items": [{"metadata": {"name": n}} for n in "abc"]})
    with Scripted([page, expired, full]) as scripted:
        items, version = scripted.client().list(CONFIGMAPS, "ns", dict, limit=1)
        assert [item["metadata"]["name"] for item in items] == ["a", "b", "c"] and version == "9"
        paths = [path for _, path in scripted.requests]
        assert "limit=1" in paths[0] and "continue=token-1" in paths[1] and "limit" not in paths[2]


def test_watch_skips_unknown_events_resumes_garbled_streams_and_raises_errors() -> None:
    added = b'{"type":"ADDED","object":{"metadata":{"name":"a","namespace":"ns","resourceVersion":"5"}}}\n'
    first = Reply(chunks=[added[:30], added[30:], b'{"type":"WEIRD","object":{"metadata":{"resourceVersion":"6"}}}\n', b"garbage\n"])
    error = b'{"type":"ERROR","object":{"kind":"Status","code":500,"reason":"InternalError","message":"boom"}}\n'
    with Scripted([first, Reply(chunks=[error])]) as scripted:
        seen: list[tuple[str, str]] = []
        with pytest.raises(kube.ServerError, match="boom"):
            for event in scripted.client().watch(CONFIGMAPS, "ns", dict, "1"):
                seen.append((event.type, event.name))
        assert seen == [("ADDED", "a")]
        first_path, second_path = (path for _, path in scripted.requests)
        assert "resourceVersion=1" in first_path and "allowWatchBookmarks=true" in first_path
        assert "resourceVersion=5" in second_path  # resumed after the last good event


def test_watch_stream_over_tls_and_a_non_200_watch(tmp_path: Path) -> None:
    api = ApiServer(tls=True).start()
    try:
        with client_for(api, tmp_path, timeout=10) as client:
            _, since = client.list(CONFIGMAPS, "default", dict)
            client.create(CONFIGMAPS, {"metadata": {"name": "over-tls", "namespace": "default"}})
            events = list(client.watch(CONFIGMAPS, "default", dict, since, timeout_seconds=1, reconnect=False))
            assert [(event.type, event.name) for event in events] == [("ADDED", "over-tls"), ("BOOKMARK", "")]
            with pytest.raises(kube.BadRequest):
                list(client.watch(CONFIGMAPS, "default", dict, "not-a-number", timeout_seconds=1))
    finally:
        api.stop()
