"""Admission webhooks (danm.admission) against real webhook servers.

Every webhook here is an HTTP(S) server on 127.0.0.1: an HTTPS one with a certificate for
``svc.ns.svc`` (and the danm webhook's service name) from a CA made per test module, which
service references reach through ``resolve_service``, and a plain HTTP one for URL references.
Each test installs the behaviour of the paths it uses and reads back the reviews received.
"""

import base64
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from danm.admission import (
    MUTATING,
    AdmissionAttributes,
    WebhookDispatcher,
    configuration_causes,
    configuration_defaults,
    rule_matches,
    warning_header,
)
from danm.apiresources import builtin_resources, resources_from_crd
from danm.rbac import UserInfo
from danm.apistore import JsonObject, Resource, StatusError
from testlib import REPO, shared_dir
from webhooklib import (
    Authority,
    Behaviour,
    Reply,
    WebhookServer,
    allow,
    denying,
    encode_patch,
    labelling,
    patching,
    respond,
    sleeping,
)



# --- Configurations


def configuration(name: str, *hooks: JsonObject, mutating: bool = True) -> JsonObject:
    kind = "MutatingWebhookConfiguration" if mutating else "ValidatingWebhookConfiguration"
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": list(hooks),
    }


def hook(name: str, client_config: JsonObject, **fields: Any) -> JsonObject:
    spec: JsonObject = {
        "name": name,
        "clientConfig": client_config,
        "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }
    spec.update(fields)
    return spec


def service_config(
    authority: "Authority", path: str, name: str = "svc", namespace: str = "ns", port: int = 443
) -> JsonObject:
    return {
        "service": {"namespace": namespace, "name": name, "path": path, "port": port},
        "caBundle": authority.bundle,
    }


NAMESPACE_LABELS: dict[str, dict[str, str]] = {
    "ns": {"kubernetes.io/metadata.name": "ns", "team": "a"},
    "other": {"kubernetes.io/metadata.name": "other", "team": "b"},
    "kube-system": {"kubernetes.io/metadata.name": "kube-system"},
}


class Cluster:
    """The stored configurations and the dispatcher reading them."""

    def __init__(self, https: WebhookServer) -> None:
        self.mutating: list[JsonObject] = []
        self.validating: list[JsonObject] = []
        self.https = https
        self.dispatcher = WebhookDispatcher(self.configurations, NAMESPACE_LABELS.get, self.resolve)

    def configurations(self, kind: str) -> list[JsonObject]:
        return list(self.mutating if kind == MUTATING else self.validating)

    def resolve(self, namespace: str, name: str, port: int) -> tuple[str, int]:
        if (namespace, name) in (("ns", "svc"), ("ns", "other"), ("kube-system", "danm-webhook-svc")):
            return "127.0.0.1", self.https.port
        raise LookupError(f'service "{namespace}/{name}" has no ready endpoints')


# --- Resources and objects


def _resources() -> dict[str, Resource]:
    found = {
        resource.plural: resource for resource in builtin_resources() if resource.group in ("", ADMISSION)
    }
    for path in sorted((REPO / "deploy" / "crds").glob("*.yaml")):
        for resource in resources_from_crd(yaml.safe_load(path.read_text(encoding="utf-8"))):
            found[resource.plural] = resource
    return found


ADMISSION = "admissionregistration.k8s.io"
RESOURCES = _resources()
DANMNETS = RESOURCES["danmnets"]
PODS = RESOURCES["pods"]


def danmnet(name: str = "internal", labels: dict[str, str] | None = None, **spec: Any) -> JsonObject:
    return {
        "apiVersion": "danm.io/v1",
        "kind": "DanmNet",
        "metadata": {"name": name, "namespace": "ns", "labels": dict(labels or {})},
        "spec": {"NetworkID": name, **spec},
    }


def create(
    obj: JsonObject, resource: Resource = DANMNETS, namespace: str = "ns", **fields: Any
) -> AdmissionAttributes:
    return AdmissionAttributes(
        "CREATE", resource, namespace if resource.namespaced else "", obj["metadata"]["name"], obj, **fields
    )


def refusal(action: Callable[[], object]) -> StatusError:
    with pytest.raises(StatusError) as caught:
        action()
    return caught.value


# --- Fixtures


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority("danm test CA")


@pytest.fixture(scope="module")
def https_server(authority: Authority, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = authority.issue(directory, ["svc.ns.svc", "danm-webhook-svc.kube-system.svc"], ["127.0.0.1"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = WebhookServer(context)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http_server() -> Iterator[WebhookServer]:
    server = WebhookServer(None)
    yield server
    server.stop()


@pytest.fixture
def https(https_server: WebhookServer) -> WebhookServer:
    https_server.reset()
    return https_server


@pytest.fixture
def plain(http_server: WebhookServer) -> WebhookServer:
    http_server.reset()
    return http_server


@pytest.fixture
def cluster(https: WebhookServer, plain: WebhookServer) -> Cluster:
    return Cluster(https)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# --- Mutating webhooks


def test_mutating_patch_over_https_service(
    cluster: Cluster, https: WebhookServer, authority: Authority
) -> None:
    https.behaviours["/netvalidation"] = patching(
        [{"op": "add", "path": "/spec/NetworkType", "value": "ipvlan"}], warnings=["NetworkType defaulted"]
    )
    cluster.mutating.append(
        configuration("danm", hook("net.danm.example.com", service_config(authority, "/netvalidation")))
    )
    original = danmnet()
    user = UserInfo("alice", ["devs", "system:authenticated"], "u-1")
    attributes = create(original, user=user)

    mutated = cluster.dispatcher.mutate(attributes)

    assert mutated is not None and mutated["spec"] == {"NetworkID": "internal", "NetworkType": "ipvlan"}
    assert attributes.obj is mutated
    assert original["spec"] == {"NetworkID": "internal"}, "the submitted object is not changed in place"
    assert attributes.warnings == ["NetworkType defaulted"]
    [call] = https.calls
    assert (call.path, call.query, call.host) == ("/netvalidation", "timeout=10s", "svc.ns.svc:443")
    assert call.review["apiVersion"] == "admission.k8s.io/v1" and call.review["kind"] == "AdmissionReview"
    request = call.request
    uuid.UUID(request.pop("uid"))
    assert request == {
        "kind": {"group": "danm.io", "version": "v1", "kind": "DanmNet"},
        "resource": {"group": "danm.io", "version": "v1", "resource": "danmnets"},
        "requestKind": {"group": "danm.io", "version": "v1", "kind": "DanmNet"},
        "requestResource": {"group": "danm.io", "version": "v1", "resource": "danmnets"},
        "name": "internal",
        "namespace": "ns",
        "operation": "CREATE",
        "userInfo": {"username": "alice", "uid": "u-1", "groups": ["devs", "system:authenticated"]},
        "object": original,
        "oldObject": None,
        "dryRun": False,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
    }


def test_mutating_webhooks_run_in_order_each_seeing_the_previous_result(
    cluster: Cluster, plain: WebhookServer
) -> None:
    for name in ("z", "y", "x"):
        plain.behaviours[f"/{name}"] = labelling(name)
    # configurations by name, then the webhooks in list order (not by webhook name)
    cluster.mutating.append(configuration("b-second", hook("z.example.com", {"url": plain.url("/z")})))
    cluster.mutating.append(
        configuration(
            "a-first",
            hook("y.example.com", {"url": plain.url("/y")}),
            hook("x.example.com", {"url": plain.url("/x")}),
        )
    )

    mutated = cluster.dispatcher.mutate(create(danmnet()))

    assert plain.paths() == ["/y", "/x", "/z"]
    seen = [sorted(call.request["object"]["metadata"]["labels"]) for call in plain.calls]
    assert seen == [[], ["y"], ["x", "y"]]
    assert mutated is not None and mutated["metadata"]["labels"] == {"y": "yes", "x": "yes", "z": "yes"}


def test_reinvocation_if_needed(cluster: Cluster, plain: WebhookServer) -> None:
    plain.behaviours["/a"] = labelling("a")
    plain.behaviours["/b"] = labelling("b")
    plain.behaviours["/c"] = allow
    cluster.mutating.append(
        configuration(
            "chain",
            hook("a.example.com", {"url": plain.url("/a")}, reinvocationPolicy="IfNeeded"),
            hook("b.example.com", {"url": plain.url("/b")}, reinvocationPolicy="Never"),
            hook("c.example.com", {"url": plain.url("/c")}, reinvocationPolicy="IfNeeded"),
        )
    )

    mutated = cluster.dispatcher.mutate(create(danmnet()))

    # b changed the object after a ran, so a runs once more; c ran after the last change
    assert plain.paths() == ["/a", "/b", "/c", "/a"]
    assert plain.calls[3].request["object"]["metadata"]["labels"] == {"a": "yes", "b": "yes"}
    assert mutated is not None and mutated["metadata"]["labels"] == {"a": "yes", "b": "yes"}

    plain.reset()
    plain.behaviours["/a"] = labelling("a")
    plain.behaviours["/c"] = allow
    cluster.mutating[:] = [
        configuration(
            "quiet",
            hook("a.example.com", {"url": plain.url("/a")}, reinvocationPolicy="IfNeeded"),
            hook("c.example.com", {"url": plain.url("/c")}),
        )
    ]
    cluster.dispatcher.mutate(create(danmnet()))
    assert plain.paths() == ["/a", "/c"], "nothing changed after a: no second round"


def test_bad_patch_is_an_internal_error_whatever_the_failure_policy(
    cluster: Cluster, plain: WebhookServer
) -> None:
    plain.behaviours["/bad"] = patching([{"op": "remove", "path": "/spec/missing"}])
    cluster.mutating.append(
        configuration("bad", hook("bad.example.com", {"url": plain.url("/bad")}, failurePolicy="Ignore"))
    )

    error = refusal(lambda: cluster.dispatcher.mutate(create(danmnet())))

    assert (error.code, error.reason) == (500, "InternalError")
    assert error.message == "Internal error occurred: operation 0: path /spec/missing does not exist"

    plain.behaviours["/bad"] = patching([{"op": "add", "path": "/metadata/labels/x", "value": "y"}])
    deletion = AdmissionAttributes("DELETE", DANMNETS, "ns", "internal", None, old_obj=danmnet())
    error = refusal(lambda: cluster.dispatcher.mutate(deletion))
    assert error.message == (
        'Internal error occurred: admission webhook "bad.example.com" attempted to modify the object, '
        "which is not supported for this operation"
    )


def test_delete_review_carries_the_old_object(cluster: Cluster, plain: WebhookServer) -> None:
    plain.behaviours["/del"] = allow
    cluster.validating.append(
        configuration("del", hook("del.example.com", {"url": plain.url("/del")}), mutating=False)
    )
    clusternetworks = RESOURCES["clusternetworks"]
    stored = {
        "apiVersion": "danm.io/v1",
        "kind": "ClusterNetwork",
        "metadata": {"name": "wide"},
        "spec": {"NetworkID": "wide"},
    }

    cluster.dispatcher.validate(
        AdmissionAttributes("DELETE", clusternetworks, "", "wide", None, old_obj=stored)
    )

    [call] = plain.calls
    request = call.request
    assert "namespace" not in request and request["name"] == "wide"
    assert (request["operation"], request["object"], request["oldObject"]) == ("DELETE", None, stored)
    assert request["options"] == {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}


# --- Validating webhooks


@pytest.mark.parametrize(
    ("status", "code", "reason", "message"),
    [
        ({"code": 403, "message": "no free IPs"}, 403, "", "no free IPs"),
        ({"code": 409, "reason": "AlreadyExists", "message": "VNI taken"}, 409, "AlreadyExists", "VNI taken"),
        ({"reason": "NetworkIDTooLong"}, 400, "NetworkIDTooLong", "NetworkIDTooLong"),
        ({"code": 200, "message": "refused anyway"}, 400, "", "refused anyway"),
        (None, 400, "", None),
    ],
)
def test_validating_denial(
    cluster: Cluster,
    plain: WebhookServer,
    status: JsonObject | None,
    code: int,
    reason: str,
    message: str | None,
) -> None:
    plain.behaviours["/deny"] = denying(status, warnings=["look at spec.cidr"])
    cluster.validating.append(
        configuration("deny", hook("deny.example.com", {"url": plain.url("/deny")}), mutating=False)
    )
    attributes = create(danmnet())

    error = refusal(lambda: cluster.dispatcher.validate(attributes))

    denied = 'admission webhook "deny.example.com" denied the request'
    assert (error.code, error.reason) == (code, reason)
    assert error.message == (f"{denied}: {message}" if message else f"{denied} without explanation")
    assert attributes.warnings == ["look at spec.cidr"], "warnings survive the refusal"


def test_validating_webhooks_run_in_parallel(cluster: Cluster, plain: WebhookServer) -> None:
    plain.behaviours["/slow1"] = sleeping(0.8)
    plain.behaviours["/slow2"] = sleeping(0.8)
    plain.behaviours["/deny"] = denying({"code": 403, "message": "no"})
    cluster.validating.append(
        configuration(
            "parallel",
            hook("slow1.example.com", {"url": plain.url("/slow1")}),
            hook("slow2.example.com", {"url": plain.url("/slow2")}),
            hook("deny.example.com", {"url": plain.url("/deny")}),
            mutating=False,
        )
    )
    started = time.monotonic()

    error = refusal(lambda: cluster.dispatcher.validate(create(danmnet())))

    elapsed = time.monotonic() - started
    assert error.code == 403 and "deny.example.com" in error.message
    assert sorted(plain.paths()) == ["/deny", "/slow1", "/slow2"]
    assert 0.8 <= elapsed < 1.5, f"two 0.8 s webhooks took {elapsed:.2f} s: not in parallel"


def test_validating_webhook_may_not_patch(cluster: Cluster, plain: WebhookServer) -> None:
    plain.behaviours["/v"] = patching([{"op": "add", "path": "/spec/x", "value": 1}])
    cluster.validating.append(
        configuration("v", hook("v.example.com", {"url": plain.url("/v")}), mutating=False)
    )

    error = refusal(lambda: cluster.dispatcher.validate(create(danmnet())))

    assert error.code == 500
    assert error.message == (
        'Internal error occurred: failed calling webhook "v.example.com": '
        "received invalid webhook response: validating webhook may not return response.patch"
    )


# --- Matching


def _rule(**fields: Any) -> JsonObject:
    rule: JsonObject = {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}
    rule.update(fields)
    return rule


def _pod_update(subresource: str = "") -> AdmissionAttributes:
    return AdmissionAttributes("UPDATE", PODS, "ns", "p", {}, {}, subresource=subresource)


def test_rules() -> None:
    namespaces = RESOURCES["namespaces"]
    clusternetworks = RESOURCES["clusternetworks"]
    namespace = AdmissionAttributes("CREATE", namespaces, "team", "team", {})
    cluster_scoped = AdmissionAttributes("CREATE", clusternetworks, "", "wide", {})
    cases: list[tuple[JsonObject, AdmissionAttributes, bool]] = [
        (_rule(operations=["CREATE"]), _pod_update(), False),
        (_rule(operations=["CREATE", "UPDATE"]), _pod_update(), True),
        (_rule(apiGroups=["danm.io"]), _pod_update(), False),
        (_rule(apiGroups=[""]), _pod_update(), True),
        (_rule(apiVersions=["v2"]), _pod_update(), False),
        (_rule(resources=["pods"]), _pod_update(), True),
        (_rule(resources=["pods"]), _pod_update("status"), False),
        (_rule(resources=["pods/status"]), _pod_update("status"), True),
        (_rule(resources=["pods/status"]), _pod_update(), False),
        (_rule(resources=["*/status"]), _pod_update("status"), True),
        (_rule(resources=["*"]), _pod_update("status"), False),
        (_rule(resources=["*/*"]), _pod_update("status"), True),
        (_rule(resources=["*/*"]), _pod_update(), True),
        (_rule(resources=["pods/*"]), _pod_update(), True),
        (_rule(resources=["services"]), _pod_update(), False),
        (_rule(scope="Namespaced"), _pod_update(), True),
        (_rule(scope="Cluster"), _pod_update(), False),
        (_rule(scope="Namespaced"), cluster_scoped, False),
        (_rule(scope="Cluster"), cluster_scoped, True),
        (_rule(scope="Cluster"), namespace, True),
        (_rule(scope="Namespaced"), namespace, False),
    ]
    for rule, attributes, expected in cases:
        assert rule_matches(rule, attributes) is expected, (
            rule,
            attributes.resource.plural,
            attributes.subresource,
        )


def test_subresource_rules_against_a_webhook(cluster: Cluster, plain: WebhookServer) -> None:
    plain.behaviours["/status"] = allow
    rules = [
        {"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods/status"]}
    ]
    cluster.validating.append(
        configuration("s", hook("s.example.com", {"url": plain.url("/status")}, rules=rules), mutating=False)
    )

    cluster.dispatcher.validate(_pod_update())
    assert plain.paths() == []
    cluster.dispatcher.validate(_pod_update("status"))
    [call] = plain.calls
    assert (call.request["subResource"], call.request["requestSubResource"]) == ("status", "status")
    assert call.request["kind"] == {"group": "", "version": "v1", "kind": "Pod"}


def test_namespace_selector(cluster: Cluster, plain: WebhookServer) -> None:
    plain.behaviours["/ns"] = allow
    selector = {"matchLabels": {"team": "a"}}
    cluster.validating.append(
        configuration(
            "ns",
            hook("ns.example.com", {"url": plain.url("/ns")}, namespaceSelector=selector),
            mutating=False,
        )
    )
    dispatcher = cluster.dispatcher
    namespaces = RESOURCES["namespaces"]

    dispatcher.validate(create(danmnet(), namespace="ns"))
    dispatcher.validate(create(danmnet(), namespace="other"))
    assert [call.request["namespace"] for call in plain.calls] == ["ns"]

    plain.reset()
    plain.behaviours["/ns"] = allow
    wide = {"metadata": {"name": "wide"}, "spec": {"NetworkID": "wide"}}
    dispatcher.validate(create(wide, RESOURCES["clusternetworks"]))  # cluster-scoped: always
    team_b = {"metadata": {"name": "b", "labels": {"team": "b"}}}
    team_a = {"metadata": {"name": "a", "labels": {"team": "a"}}}
    dispatcher.validate(AdmissionAttributes("CREATE", namespaces, "b", "b", team_b))
    dispatcher.validate(AdmissionAttributes("CREATE", namespaces, "a", "a", team_a))
    dispatcher.validate(AdmissionAttributes("DELETE", namespaces, "a", "a", None, old_obj=team_a))
    assert [call.request["name"] for call in plain.calls] == ["wide", "a", "a"]

    error = refusal(lambda: dispatcher.validate(create(danmnet(), namespace="ghost")))
    assert (error.code, error.message, error.details) == (
        404,
        'namespaces "ghost" not found',
        {"name": "ghost", "kind": "namespaces"},
    )

    expressions = {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]}
    cluster.validating[:] = [
        configuration(
            "ns",
            hook("ns.example.com", {"url": plain.url("/ns")}, namespaceSelector=expressions),
            mutating=False,
        )
    ]
    plain.reset()
    plain.behaviours["/ns"] = allow
    dispatcher.validate(create(danmnet(), namespace="ns"))
    dispatcher.validate(create(danmnet(), namespace="other"))
    assert [call.request["namespace"] for call in plain.calls] == ["other"]


def test_object_selector(cluster: Cluster, plain: WebhookServer) -> None:
    plain.behaviours["/obj"] = allow
    selector = {"matchLabels": {"app": "x"}}
    cluster.validating.append(
        configuration(
            "o", hook("o.example.com", {"url": plain.url("/obj")}, objectSelector=selector), mutating=False
        )
    )
    dispatcher = cluster.dispatcher
    labelled = danmnet("new", {"app": "x"})
    plain_net = danmnet("plain")

    dispatcher.validate(create(labelled))
    dispatcher.validate(create(plain_net))
    dispatcher.validate(
        AdmissionAttributes("UPDATE", DANMNETS, "ns", "old", danmnet("old"), danmnet("old", {"app": "x"}))
    )
    dispatcher.validate(
        AdmissionAttributes("UPDATE", DANMNETS, "ns", "none", danmnet("none"), danmnet("none", {"app": "y"}))
    )
    dispatcher.validate(
        AdmissionAttributes("DELETE", DANMNETS, "ns", "gone", None, danmnet("gone", {"app": "x"}))
    )

    assert [call.request["name"] for call in plain.calls] == ["new", "old", "gone"]


def test_webhook_configurations_are_exempt(cluster: Cluster, plain: WebhookServer) -> None:
    plain.behaviours["/all"] = denying({"code": 403, "message": "everything is refused"})
    cluster.validating.append(
        configuration("all", hook("all.example.com", {"url": plain.url("/all")}), mutating=False)
    )
    cluster.mutating.append(configuration("all", hook("all.example.com", {"url": plain.url("/all")})))
    for plural in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        config = configuration("x")
        attributes = create(config, RESOURCES[plural])
        assert cluster.dispatcher.mutate(attributes) is config
        cluster.dispatcher.validate(attributes)
    assert plain.paths() == []
    refusal(lambda: cluster.dispatcher.validate(create(danmnet())))


def test_match_conditions(cluster: Cluster, plain: WebhookServer) -> None:
    plain.behaviours["/mc"] = allow
    dispatcher = cluster.dispatcher

    def install(expressions: list[str], policy: str = "Fail") -> None:
        conditions = [{"name": f"c{number}", "expression": text} for number, text in enumerate(expressions)]
        cluster.validating[:] = [
            configuration(
                "mc",
                hook(
                    "mc.example.com",
                    {"url": plain.url("/mc")},
                    matchConditions=conditions,
                    failurePolicy=policy,
                ),
                mutating=False,
            )
        ]

    install(["true", " true "])
    dispatcher.validate(create(danmnet()))
    assert len(plain.calls) == 1
    install(["true", "false"])
    dispatcher.validate(create(danmnet()))
    install(["object.spec.NetworkType == 'ipvlan'", "false"])  # a false condition wins over an error
    dispatcher.validate(create(danmnet()))
    install(["object.spec.NetworkType == 'ipvlan'"], policy="Ignore")
    dispatcher.validate(create(danmnet()))
    assert len(plain.calls) == 1

    install(["object.spec.NetworkType == 'ipvlan'"])
    error = refusal(lambda: dispatcher.validate(create(danmnet())))
    assert (error.code, error.reason) == (403, "Forbidden")
    assert error.message.startswith(
        'danmnets.danm.io "internal" is forbidden: matchCondition "c0" of webhook "mc.example.com"'
    )
    assert error.details == {"kind": "danmnets", "group": "danm.io", "name": "internal"}


# --- Failures and failurePolicy


def _failing(cluster: Cluster, client_config: JsonObject, policy: str, **fields: Any) -> None:
    cluster.mutating[:] = [
        configuration("f", hook("f.example.com", client_config, failurePolicy=policy, **fields))
    ]


def test_timeout_under_fail_and_ignore(cluster: Cluster, plain: WebhookServer) -> None:
    plain.behaviours["/slow"] = sleeping(1.6, labelling("late"))
    _failing(cluster, {"url": plain.url("/slow")}, "Fail", timeoutSeconds=1)
    started = time.monotonic()

    error = refusal(lambda: cluster.dispatcher.mutate(create(danmnet())))

    assert time.monotonic() - started < 1.5
    assert (error.code, error.reason) == (500, "InternalError")
    cause = f'failed calling webhook "f.example.com": failed to call webhook: Post "{plain.url("/slow")}?timeout=1s": context deadline exceeded'
    assert error.message == f"Internal error occurred: {cause}"
    assert error.details == {"causes": [{"message": cause}]}

    _failing(cluster, {"url": plain.url("/slow")}, "Ignore", timeoutSeconds=1)
    original = danmnet()
    assert cluster.dispatcher.mutate(create(original)) == original


def test_refused_connection_under_fail_and_ignore(cluster: Cluster, plain: WebhookServer) -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}/gone"
    _failing(cluster, {"url": url}, "Fail")

    error = refusal(lambda: cluster.dispatcher.mutate(create(danmnet())))

    assert error.code == 500
    assert error.message == (
        f'Internal error occurred: failed calling webhook "f.example.com": failed to call webhook: '
        f'Post "{url}?timeout=10s": dial tcp 127.0.0.1:{port}: connect: connection refused'
    )

    # under Ignore the chain goes on with the next webhook
    plain.behaviours["/next"] = labelling("next")
    cluster.mutating[:] = [
        configuration(
            "f",
            hook("f.example.com", {"url": url}, failurePolicy="Ignore"),
            hook("next.example.com", {"url": plain.url("/next")}),
        )
    ]
    mutated = cluster.dispatcher.mutate(create(danmnet()))
    assert mutated is not None and mutated["metadata"]["labels"] == {"next": "yes"}


def test_tls_verification(cluster: Cluster, https: WebhookServer, authority: Authority) -> None:
    https.behaviours["/tls"] = labelling("tls")
    stranger = Authority("another CA")

    _failing(cluster, service_config(stranger, "/tls"), "Fail")
    error = refusal(lambda: cluster.dispatcher.mutate(create(danmnet())))
    assert error.code == 500
    assert (
        'Post "https://svc.ns.svc:443/tls?timeout=10s": tls: failed to verify certificate: x509: certificate signed by unknown authority'
        in error.message
    )

    _failing(cluster, service_config(authority, "/tls", name="other"), "Fail")
    error = refusal(lambda: cluster.dispatcher.mutate(create(danmnet())))
    assert error.message.endswith(
        'Post "https://other.ns.svc:443/tls?timeout=10s": tls: failed to verify certificate: x509: certificate is not valid for other.ns.svc'
    )

    _failing(cluster, service_config(authority, "/tls", name="nowhere"), "Fail")
    error = refusal(lambda: cluster.dispatcher.mutate(create(danmnet())))
    assert error.message.endswith(
        'Post "https://nowhere.ns.svc:443/tls?timeout=10s": service "ns/nowhere" has no ready endpoints'
    )

    garbled = dict(service_config(authority, "/tls"), caBundle=base64.b64encode(b"not a PEM").decode())
    _failing(cluster, garbled, "Fail")
    error = refusal(lambda: cluster.dispatcher.mutate(create(danmnet())))
    assert (
        'failed calling webhook "f.example.com": could not get REST client: unable to load root certificates'
        in error.message
    )

    _failing(cluster, service_config(stranger, "/tls"), "Ignore")
    assert cluster.dispatcher.mutate(create(danmnet())) == danmnet()
    assert https.calls == [], "no request is sent over an unverified connection"

    # a URL reference is verified against the URL's host (an IP address here)
    _failing(cluster, {"url": https.url("/tls"), "caBundle": authority.bundle}, "Fail")
    mutated = cluster.dispatcher.mutate(create(danmnet()))
    assert mutated is not None and mutated["metadata"]["labels"] == {"tls": "yes"}
    assert https.calls[0].host == f"127.0.0.1:{https.port}"


def test_dry_run(cluster: Cluster, plain: WebhookServer) -> None:
    plain.behaviours["/dry"] = allow
    dry = create(danmnet(), dry_run=True)

    cluster.mutating[:] = [
        configuration(
            "d", hook("d.example.com", {"url": plain.url("/dry")}, sideEffects="Some", failurePolicy="Ignore")
        )
    ]
    error = refusal(lambda: cluster.dispatcher.mutate(dry))
    assert (error.code, error.reason, error.message) == (
        400,
        "BadRequest",
        'admission webhook "d.example.com" does not support dry run',
    )
    assert plain.calls == []

    cluster.mutating[:] = [
        configuration("d", hook("d.example.com", {"url": plain.url("/dry")}, sideEffects="None"))
    ]
    cluster.dispatcher.mutate(dry)
    cluster.mutating[:] = [
        configuration("d", hook("d.example.com", {"url": plain.url("/dry")}, sideEffects="NoneOnDryRun"))
    ]
    cluster.dispatcher.mutate(dry)
    assert [call.request["dryRun"] for call in plain.calls] == [True, True]
    assert plain.calls[0].request["options"] == {
        "kind": "CreateOptions",
        "apiVersion": "meta.k8s.io/v1",
        "dryRun": ["All"],
    }

    unspecified = hook("d.example.com", {"url": plain.url("/dry")})
    del unspecified["sideEffects"]
    cluster.mutating[:] = [configuration("d", unspecified)]
    error = refusal(lambda: cluster.dispatcher.mutate(dry))
    assert (
        error.message
        == 'Internal error occurred: failed calling webhook "d.example.com": Webhook SideEffects is nil'
    )


def _without_envelope(review: JsonObject) -> JsonObject:
    return {"response": {"uid": review["request"]["uid"], "allowed": True}}


def _wrong_uid(review: JsonObject) -> JsonObject:
    reply = respond(review, allowed=True)
    reply["response"]["uid"] = "0000"
    return reply


def _no_response(review: JsonObject) -> JsonObject:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}


def _patch_without_type(review: JsonObject) -> JsonObject:
    return respond(review, allowed=True, patch=encode_patch([{"op": "add", "path": "/spec/x", "value": 1}]))


def _type_without_patch(review: JsonObject) -> JsonObject:
    return respond(review, allowed=True, patchType="JSONPatch")


def _merge_patch(review: JsonObject) -> JsonObject:
    return respond(
        review,
        allowed=True,
        patchType="MergePatch",
        patch=encode_patch([{"op": "add", "path": "/spec/x", "value": 1}]),
    )


def _undecodable_patch(review: JsonObject) -> JsonObject:
    return respond(review, allowed=True, patchType="JSONPatch", patch=base64.b64encode(b"{not json").decode())


def _bad_base64(review: JsonObject) -> JsonObject:
    return respond(review, allowed=True, patchType="JSONPatch", patch="not base64!")


def _server_error(review: JsonObject) -> Reply:
    return 500, b"boom"


def _not_json(review: JsonObject) -> Reply:
    return 200, b"<html>"


@pytest.mark.parametrize(
    ("behaviour", "cause"),
    [
        (_wrong_uid, 'received invalid webhook response: expected response.uid="{uid}", got "0000"'),
        (_no_response, "received invalid webhook response: webhook response was absent"),
        (
            _without_envelope,
            "received invalid webhook response: expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got /, Kind=",
        ),
        (
            _patch_without_type,
            "received invalid webhook response: webhook returned response.patch but not response.patchType",
        ),
        (
            _type_without_patch,
            "received invalid webhook response: webhook returned response.patchType but not response.patch",
        ),
        (_merge_patch, 'unsupported patch type "MergePatch"'),
        (_undecodable_patch, "received undecodable patch in webhook response: "),
        (_bad_base64, "failed to call webhook: illegal base64 data in response.patch: "),
        (
            _server_error,
            'failed to call webhook: an error on the server ("boom") has prevented the request from succeeding',
        ),
        (_not_json, "failed to call webhook: couldn't get version/kind; json parse error: "),
    ],
)
def test_invalid_responses_are_call_failures(
    cluster: Cluster, plain: WebhookServer, behaviour: Behaviour, cause: str
) -> None:
    plain.behaviours["/odd"] = behaviour
    _failing(cluster, {"url": plain.url("/odd")}, "Fail")

    error = refusal(lambda: cluster.dispatcher.mutate(create(danmnet())))

    expected = 'Internal error occurred: failed calling webhook "f.example.com": ' + cause.format(
        uid=plain.calls[0].request["uid"]
    )
    assert error.code == 500 and error.message.startswith(expected), error.message

    _failing(cluster, {"url": plain.url("/odd")}, "Ignore")
    assert cluster.dispatcher.mutate(create(danmnet())) == danmnet()


def test_admission_review_versions(cluster: Cluster, plain: WebhookServer) -> None:
    def v1beta1(review: JsonObject) -> JsonObject:  # v1beta1 replies need neither uid nor apiVersion/kind
        return {
            "response": {
                "allowed": True,
                "patchType": "JSONPatch",
                "patch": encode_patch([{"op": "add", "path": "/spec/old", "value": True}]),
            }
        }

    plain.behaviours["/beta"] = v1beta1
    _failing(cluster, {"url": plain.url("/beta")}, "Fail", admissionReviewVersions=["v1beta1", "v1"])
    mutated = cluster.dispatcher.mutate(create(danmnet()))
    assert mutated is not None and mutated["spec"]["old"] is True
    assert plain.calls[0].review["apiVersion"] == "admission.k8s.io/v1beta1"

    _failing(cluster, {"url": plain.url("/beta")}, "Fail", admissionReviewVersions=["v2"])
    error = refusal(lambda: cluster.dispatcher.mutate(create(danmnet())))
    assert error.message.endswith(
        "could not create admission objects: webhook does not accept known AdmissionReview versions (v1, v1beta1)"
    )
    assert len(plain.calls) == 1


def test_warnings(cluster: Cluster, plain: WebhookServer) -> None:
    plain.behaviours["/m"] = patching(
        [{"op": "add", "path": "/spec/x", "value": 1}], warnings=["first", 'a "quoted" one']
    )
    plain.behaviours["/v"] = lambda review: respond(review, allowed=True, warnings=["first", "", "last"])
    cluster.mutating.append(configuration("m", hook("m.example.com", {"url": plain.url("/m")})))
    cluster.validating.append(
        configuration("v", hook("v.example.com", {"url": plain.url("/v")}), mutating=False)
    )
    collected: list[str] = []
    attributes = create(danmnet(), warnings=collected)

    cluster.dispatcher.mutate(attributes)
    cluster.dispatcher.validate(attributes)

    assert collected == ["first", 'a "quoted" one', "last"]
    assert warning_header('a "quoted" \\ one\nnext') == '299 - "a \\"quoted\\" \\\\ one next"'
    assert warning_header("héllo").encode("latin-1") == '299 - "héllo"'.encode()


# --- Configurations: danm's own, defaults, validation


def _danm_configuration() -> JsonObject:
    path = shared_dir() / "danm-manifests" / "integration" / "manifests" / "webhook" / "webhook.yaml"
    for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if isinstance(document, dict) and document.get("kind") == "MutatingWebhookConfiguration":
            return document
    raise AssertionError(f"no MutatingWebhookConfiguration in {path}")


def test_danm_webhook_configuration(cluster: Cluster, https: WebhookServer, authority: Authority) -> None:
    original = _danm_configuration()
    assert original["apiVersion"] == "admissionregistration.k8s.io/v1beta1"
    # as shipped, v1 refuses it: v1 has no defaults for sideEffects and admissionReviewVersions
    missing = {cause["field"] for cause in configuration_causes(configuration_defaults(original, True), True)}
    assert missing == {
        f"webhooks[{index}].{key}" for index in range(3) for key in ("sideEffects", "admissionReviewVersions")
    }

    # the v1 version: those two fields, no namespace (the object is cluster-scoped), a real caBundle
    converted = dict(original, apiVersion="admissionregistration.k8s.io/v1")
    converted["metadata"] = {"name": original["metadata"]["name"]}
    converted["webhooks"] = [
        dict(
            webhook,
            sideEffects="NoneOnDryRun",
            admissionReviewVersions=["v1"],
            clientConfig=dict(webhook["clientConfig"], caBundle=authority.bundle),
        )
        for webhook in original["webhooks"]
    ]
    stored = configuration_defaults(converted, True)
    assert configuration_causes(stored, True) == []
    first = stored["webhooks"][0]
    assert (
        first["matchPolicy"],
        first["reinvocationPolicy"],
        first["namespaceSelector"],
        first["objectSelector"],
    ) == ("Equivalent", "Never", {}, {})
    assert (
        first["rules"][0]["scope"],
        first["clientConfig"]["service"]["port"],
        first["timeoutSeconds"],
    ) == ("*", 443, 25)

    for path in ("/netvalidation", "/confvalidation", "/netdeletion"):
        https.behaviours[path] = allow
    cluster.mutating.append(stored)
    tenantconfig = {"apiVersion": "danm.io/v1", "kind": "TenantConfig", "metadata": {"name": "tc"}}

    def called(operation: str, plural: str, subresource: str = "") -> list[str]:
        https.reset()
        for route in ("/netvalidation", "/confvalidation", "/netdeletion"):
            https.behaviours[route] = allow
        resource = RESOURCES[plural]
        namespace = "kube-system" if resource.namespaced else ""
        obj = danmnet() if resource.namespaced else dict(tenantconfig)
        new = None if operation == "DELETE" else obj
        old = None if operation == "CREATE" else obj
        cluster.dispatcher.mutate(
            AdmissionAttributes(operation, resource, namespace, "n", new, old, subresource=subresource)
        )
        return https.paths()

    for plural in ("danmnets", "clusternetworks", "tenantnetworks"):
        assert called("CREATE", plural) == ["/netvalidation"], plural
        assert called("UPDATE", plural) == [], plural  # left out upstream (nokia/danm#144)
        assert called("DELETE", plural) == ["/netdeletion"], plural
    assert called("CREATE", "tenantconfigs") == ["/confvalidation"]
    assert called("UPDATE", "tenantconfigs") == ["/confvalidation"]
    assert called("DELETE", "tenantconfigs") == []
    assert called("UPDATE", "danmnets", "status") == []
    assert called("CREATE", "danmeps") == []
    assert called("CREATE", "pods") == []
    assert called("CREATE", "danmnets") == ["/netvalidation"]
    call = https.calls[0]
    assert (call.host, call.query) == ("danm-webhook-svc.kube-system.svc:443", "timeout=25s")


def test_configuration_validation() -> None:
    good = hook("good.example.com", {"url": "https://hooks.example.com/x"})
    assert configuration_causes(configuration_defaults(configuration("c", good), True), True) == []

    bad_rules = [
        {
            "operations": ["CREATE", "PATCH"],
            "apiGroups": [],
            "apiVersions": ["v1"],
            "resources": ["*", "pods"],
            "scope": "Global",
        }
    ]
    config = configuration(
        "c",
        hook(
            "two.segments",
            {"url": "http://hooks.example.com/x?y=1"},
            timeoutSeconds=31,
            sideEffects="Some",
            rules=bad_rules,
        ),
        hook(
            "dup.example.com",
            {"service": {"namespace": "ns", "name": "svc", "path": "x", "port": 0}},
            admissionReviewVersions=["v2"],
        ),
        hook(
            "dup.example.com",
            {"url": "https://h/x", "service": {"namespace": "ns", "name": "svc"}},
            reinvocationPolicy="Sometimes",
        ),
    )
    causes = {(cause["field"], cause["message"]) for cause in configuration_causes(config, True)}
    expected = {
        (
            "webhooks[0].name",
            'Invalid value: "two.segments": should be a domain with at least three segments separated by dots',
        ),
        (
            "webhooks[0].clientConfig.url",
            "Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
        ),
        (
            "webhooks[0].clientConfig.url",
            'Invalid value: "y=1": query parameters are not permitted in the URL',
        ),
        (
            "webhooks[0].timeoutSeconds",
            "Invalid value: 31: the timeout value must be between 1 and 30 seconds",
        ),
        ("webhooks[0].sideEffects", 'Unsupported value: "Some": supported values: "None", "NoneOnDryRun"'),
        (
            "webhooks[0].rules[0].operations[1]",
            'Unsupported value: "PATCH": supported values: "*", "CONNECT", "CREATE", "DELETE", "UPDATE"',
        ),
        ("webhooks[0].rules[0].apiGroups", "Required value"),
        (
            "webhooks[0].rules[0].resources",
            'Invalid value: []string{"*", "pods"}: if \'*\' is present, must not specify other resources without subresources',
        ),
        (
            "webhooks[0].rules[0].scope",
            'Unsupported value: "Global": supported values: "*", "Cluster", "Namespaced"',
        ),
        ("webhooks[1].clientConfig.service.path", "Invalid value: \"x\": must start with a '/'"),
        # kube checks the segments after dropping the first character, whatever it is
        ("webhooks[1].clientConfig.service.path", 'Invalid value: "x": segment[0] may not be empty'),
        (
            "webhooks[1].clientConfig.service.port",
            "Invalid value: 0: port is not valid: must be between 1 and 65535, inclusive",
        ),
        (
            "webhooks[1].admissionReviewVersions",
            'Invalid value: []string{"v2"}: must include at least one of v1, v1beta1',
        ),
        ("webhooks[2].name", 'Duplicate value: "dup.example.com"'),
        ("webhooks[2].clientConfig", "Required value: exactly one of url or service is required"),
        (
            "webhooks[2].reinvocationPolicy",
            'Unsupported value: "Sometimes": supported values: "IfNeeded", "Never"',
        ),
    }
    assert causes == expected

    http_hook = hook("plain.example.com", {"url": "http://127.0.0.1:8080/x"})
    assert configuration_causes(configuration("c", http_hook), True, allow_http=True) == []
    assert [cause["field"] for cause in configuration_causes(configuration("c", http_hook), False)] == [
        "webhooks[0].clientConfig.url"
    ]
