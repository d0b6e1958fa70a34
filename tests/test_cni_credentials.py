"""DEL when the API server refuses danm's credentials: a loud error in the log and an Event on
the pod, and "try again" (11) so that the runtime repeats DEL until someone fixes the RBAC."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from danm import kube
from danm.apiserver import ApiServer, load_crds
from danm import cni, networkstatus
from danm.types import NetworkStatus, Pod
from cnilib import Plugin, create, create_network, create_pod, danmeps, netns, set_bits
from testlib import REPO

SERVICEACCOUNTS = kube.ApiResource("", "v1", "serviceaccounts", True)


def admin_request(client: kube.ApiClient, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(client.request(method, path, body=json.dumps(body).encode()))
    return answer


@pytest.fixture
def rbac_server() -> Iterator[ApiServer]:
    api = ApiServer(rbac=True, token="admin-token").start()
    load_crds(api, str(REPO / "deploy" / "crds"))
    yield api
    api.stop()


def service_account_kubeconfig(api: ApiServer, tmp_path: Path, rules: list[dict[str, Any]] | None) -> Path:
    """A kubeconfig for ServiceAccount kube-system/danm, bound to a ClusterRole of ``rules``."""
    admin_path = tmp_path / "admin"
    admin_path.write_text(api.kubeconfig())
    with kube.ApiClient(kube.load_config(str(admin_path))) as admin:
        if rules is None:  # the shipped manifest
            for document in yaml.safe_load_all((REPO / "deploy" / "cni" / "rbac.yaml").read_text()):
                kind = document["kind"]
                if kind == "ServiceAccount":
                    create(admin, SERVICEACCOUNTS, document)
                else:
                    plural = {"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings"}[kind]
                    admin_request(admin, "POST", f"/apis/rbac.authorization.k8s.io/v1/{plural}", document)
        else:
            create(admin, SERVICEACCOUNTS, {"metadata": {"name": "danm", "namespace": "kube-system"}})
            admin_request(admin, "POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {"metadata": {"name": "danm-cni"}, "rules": rules})
            admin_request(admin, "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
                "metadata": {"name": "danm-cni"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "danm-cni"},
                "subjects": [{"kind": "ServiceAccount", "name": "danm", "namespace": "kube-system"}],
            })
        token = admin_request(
            admin, "POST", "/api/v1/namespaces/kube-system/serviceaccounts/danm/token", {"spec": {}}
        )["status"]["token"]
    document = json.loads(api.kubeconfig())
    document["users"] = [{"name": user["name"], "user": {"token": token}} for user in document["users"]]
    path = tmp_path / "danm-kubeconfig"
    path.write_text(json.dumps(document))
    return path


def test_del_forbidden_is_loud_and_retried(rbac_server: ApiServer, tmp_path: Path) -> None:
    # danm may read pods and post Events, but an RBAC mistake took away its DanmEps
    kubeconfig = service_account_kubeconfig(rbac_server, tmp_path, [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ])
    admin_path = tmp_path / "admin"
    with kube.ApiClient(kube.load_config(str(admin_path))) as admin:
        create_pod(admin, "victim", [])
        plugin = Plugin(kubeconfig, tmp_path)
        with netns() as path:
            deleted = plugin.run("DEL", container_id="c-forbidden", netns=path, pod="victim")
        assert deleted.returncode == 1 and deleted.code == 11, deleted
        assert "403" in deleted.msg or "forbidden" in deleted.msg.lower()
        lines = [json.loads(line) for line in (tmp_path / "danm.log").read_text().splitlines()]
        assert any(line["event"] == "credentials.rejected" and line["level"] == "error" for line in lines)
        events, _ = admin.list(kube.EVENTS, "default", dict)
        (event,) = [e for e in events if e["involvedObject"]["name"] == "victim"]
        assert event["type"] == "Warning" and event["reason"] == "DanmNetworkTeardownFailed"
        assert "rejected its credentials" in event["message"]
        # the first failure is on disk: the runtime's retries are bounded by delRetrySeconds
        assert list((tmp_path / "state" / "del-failures").iterdir())


def test_add_with_a_forged_token_is_refused_without_leftovers(rbac_server: ApiServer, tmp_path: Path) -> None:
    document = json.loads(rbac_server.kubeconfig())
    document["users"] = [{"name": user["name"], "user": {"token": "forged"}} for user in document["users"]]
    kubeconfig = tmp_path / "forged"
    kubeconfig.write_text(json.dumps(document))
    plugin = Plugin(kubeconfig, tmp_path)
    with netns() as path:
        added = plugin.run("ADD", container_id="c-forged", netns=path, pod="anyone")
    assert added.returncode == 1 and "401" in added.msg, added


def test_the_shipped_rbac_and_config_are_enough(rbac_server: ApiServer, tmp_path: Path) -> None:
    """deploy/cni/rbac.yaml grants every call the plugin makes; deploy/cni/00-danm.conf decodes."""
    conf = cni.decode_config((REPO / "deploy" / "cni" / "00-danm.conf").read_bytes())
    assert conf.type == "danm" and conf.kubeconfig
    kubeconfig = service_account_kubeconfig(rbac_server, tmp_path, None)
    with kube.ApiClient(kube.load_config(str(tmp_path / "admin"))) as admin:
        net = create_network(admin, "rbac-net", host_device="lo", cidr="10.91.0.0/24")
        create_pod(admin, "rbac-pod", [{"network": "rbac-net", "ip": "dynamic"}])
    plugin = Plugin(kubeconfig, tmp_path)
    with netns() as path:
        # on the host the ipvlan link itself fails (103); every API call before and the
        # rollback after (reservation, DanmEp, release, Event) ran as the ServiceAccount
        added = plugin.run("ADD", container_id="c-rbac", netns=path, pod="rbac-pod")
        assert added.returncode == 1 and added.code == 103, added
        assert "forbidden" not in added.stderr.lower() and "403" not in added.stderr
        verbs: list[tuple[str, dict[str, Any]]] = [("DEL", {}), ("STATUS", {}), ("GC", {"cni.dev/valid-attachments": []})]
        for verb, extra in verbs:
            outcome = plugin.run(verb, container_id="c-rbac", netns=path, pod="rbac-pod", **extra)
            assert outcome.returncode == 0, (verb, outcome)
            assert "forbidden" not in outcome.stderr.lower()
    with kube.ApiClient(kube.load_config(str(tmp_path / "admin"))) as admin:
        assert not danmeps(admin, "default")
        stored = admin.get(kube.DANMNETS, "default", "rbac-net", type(net))
        assert set_bits(stored.spec.options.alloc) == set_bits(net.spec.options.alloc)
        events, _ = admin.list(kube.EVENTS, "default", dict)
        assert any(event["involvedObject"]["name"] == "rbac-pod" for event in events)
    # and the network-status annotation, written through pods/status after a successful ADD
    with kube.ApiClient(kube.load_config(str(kubeconfig))) as as_danm:
        pod = as_danm.get(kube.PODS, "default", "rbac-pod", Pod)
        networkstatus.write(as_danm, pod, [NetworkStatus(name="default/rbac-net", interface="eth0")], 1e12)
        annotations = as_danm.get(kube.PODS, "default", "rbac-pod", Pod).metadata.annotations or {}
        assert "default/rbac-net" in annotations["k8s.v1.cni.cncf.io/network-status"]
