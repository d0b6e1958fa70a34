"""RBAC decisions and 403 messages, with kube-apiserver's semantics and wording."""

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from danm.errors import DanmError
from danm.rbac import (
    Authorizer,
    Decision,
    RbacError,
    RequestAttributes,
    UserInfo,
    authorize,
    bootstrap_policy,
    effective_cluster_role_rules,
    forbidden_message,
    forbidden_status,
    non_resource_request,
    parse_service_account_username,
    rule_allows,
    service_account_user,
)
from testlib import shared_dir

Obj = dict[str, Any]


# --- Object builders


def rule(verbs: list[str], groups: list[str] | None = None, resources: list[str] | None = None, **extra: Any) -> Obj:
    built: Obj = {"verbs": verbs}
    if groups is not None:
        built["apiGroups"] = groups
    if resources is not None:
        built["resources"] = resources
    built.update(extra)
    return built


def role(namespace: str, name: str, rules: list[Obj]) -> Obj:
    return {"kind": "Role", "metadata": {"namespace": namespace, "name": name}, "rules": rules}


def cluster_role(
    name: str, rules: list[Obj] | None = None, labels: dict[str, str] | None = None, selectors: list[Obj] | None = None
) -> Obj:
    built: Obj = {"kind": "ClusterRole", "metadata": {"name": name}}
    if rules is not None:
        built["rules"] = rules
    if labels is not None:
        built["metadata"]["labels"] = labels
    if selectors is not None:
        built["aggregationRule"] = {"clusterRoleSelectors": selectors}
    return built


def ref(kind: str, name: str) -> Obj:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}


def role_binding(namespace: str, name: str, role_ref: Obj, subjects: list[Obj]) -> Obj:
    return {"kind": "RoleBinding", "metadata": {"namespace": namespace, "name": name}, "roleRef": role_ref, "subjects": subjects}


def cluster_role_binding(name: str, role_ref: Obj, subjects: list[Obj]) -> Obj:
    return {"kind": "ClusterRoleBinding", "metadata": {"name": name}, "roleRef": role_ref, "subjects": subjects}


def sa(name: str, namespace: str | None = None) -> Obj:
    built: Obj = {"kind": "ServiceAccount", "name": name}
    if namespace is not None:
        built["namespace"] = namespace
    return built


def user(name: str) -> Obj:
    return {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def group(name: str) -> Obj:
    return {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def req(
    verb: str, resource: str, namespace: str = "", name: str = "", group_: str = "", subresource: str = ""
) -> RequestAttributes:
    return RequestAttributes(
        verb, api_group=group_, resource=resource, subresource=subresource, namespace=namespace, name=name
    )


ALICE = UserInfo("alice", ["system:authenticated"])
DANM = service_account_user("kube-system", "danm")


# --- Users


def test_service_account_user_has_kube_groups() -> None:
    info = service_account_user("kube-system", "danm", uid="u-1")
    assert info.username == "system:serviceaccount:kube-system:danm"
    assert info.groups == ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]
    assert info.uid == "u-1"
    assert UserInfo("bob").groups == []


@pytest.mark.parametrize(
    ("username", "parsed"),
    [
        ("system:serviceaccount:kube-system:danm", ("kube-system", "danm")),
        ("system:serviceaccount:ns:name.with.dots", ("ns", "name.with.dots")),
        ("system:serviceaccount:ns", None),
        ("system:serviceaccount:ns:a:b", None),
        ("system:serviceaccount::name", None),
        ("system:serviceaccount:ns:", None),
        ("system:serviceaccount:Upper:name", None),
        ("system:serviceaccount:dotted.ns:name", None),
        ("system:serviceaccount:" + "n" * 64 + ":name", None),
        ("system:serviceaccounts:ns:name", None),
        ("alice", None),
    ],
)
def test_parse_service_account_username(username: str, parsed: tuple[str, str] | None) -> None:
    assert parse_service_account_username(username) == parsed


def test_malformed_requests_are_refused_at_construction() -> None:
    with pytest.raises(RbacError):
        RequestAttributes("", resource="pods")
    with pytest.raises(RbacError):
        RequestAttributes("get")
    with pytest.raises(RbacError):
        RequestAttributes("get", path="version", is_resource_request=False)
    with pytest.raises(RbacError):
        RequestAttributes("get", resource="pods", path="/version", is_resource_request=False)
    with pytest.raises(DanmError):
        RequestAttributes("get", resource="pods", path="/version")


# --- Rule forms (upstream RuleAllows)


@pytest.mark.parametrize(
    ("policy", "request_", "allowed"),
    [
        # verbs
        (rule(["get"], [""], ["pods"]), req("get", "pods", "ns", "p"), True),
        (rule(["get"], [""], ["pods"]), req("delete", "pods", "ns", "p"), False),
        (rule(["*"], [""], ["pods"]), req("deletecollection", "pods", "ns"), True),
        (rule(["*"], [""], ["pods"]), req("escalate", "pods", "ns"), True),
        (rule(["use"], ["policy"], ["podsecuritypolicies"]), req("use", "podsecuritypolicies", group_="policy"), True),
        (rule([], [""], ["pods"]), req("get", "pods", "ns"), False),
        # API groups
        (rule(["get"], [""], ["pods"]), req("get", "pods", group_="apps"), False),
        (rule(["get"], ["*"], ["pods"]), req("get", "pods", group_="apps"), True),
        (rule(["get"], ["danm.io"], ["danmeps"]), req("get", "danmeps", "ns", group_="danm.io"), True),
        (rule(["get"], ["danm.io"], ["danmeps"]), req("get", "danmeps", "ns"), False),
        (rule(["get"], None, ["pods"]), req("get", "pods", "ns"), False),
        # resources and subresources
        (rule(["get"], [""], ["pods"]), req("get", "services", "ns"), False),
        (rule(["get"], [""], ["*"]), req("get", "services", "ns"), True),
        (rule(["get"], [""], ["*"]), req("get", "pods", "ns", "p", subresource="status"), True),
        (rule(["get"], [""], ["pods"]), req("get", "pods", "ns", "p", subresource="status"), False),
        (rule(["update"], [""], ["pods/status"]), req("update", "pods", "ns", "p", subresource="status"), True),
        (rule(["update"], [""], ["pods/status"]), req("update", "pods", "ns", "p"), False),
        (rule(["update"], [""], ["pods/status"]), req("update", "services", "ns", "s", subresource="status"), False),
        (rule(["update"], [""], ["*/status"]), req("update", "services", "ns", "s", subresource="status"), True),
        (rule(["update"], [""], ["*/status"]), req("update", "pods", "ns", "p", subresource="log"), False),
        (rule(["update"], [""], ["*/status"]), req("update", "pods", "ns", "p"), False),
        # kube has no "resource/*" form: it is a literal that no request names
        (rule(["get"], [""], ["pods/*"]), req("get", "pods", "ns", "p", subresource="log"), False),
        (rule(["get"], [""], ["pods/*"]), req("get", "pods", "ns", "p"), False),
        # resourceNames
        (rule(["get"], [""], ["pods"], resourceNames=["p1"]), req("get", "pods", "ns", "p1"), True),
        (rule(["get"], [""], ["pods"], resourceNames=["p1"]), req("get", "pods", "ns", "p2"), False),
        (rule(["list"], [""], ["pods"], resourceNames=["p1"]), req("list", "pods", "ns"), False),
        (rule(["watch"], [""], ["pods"], resourceNames=["p1"]), req("watch", "pods", "ns"), False),
        (rule(["create"], [""], ["pods"], resourceNames=["p1"]), req("create", "pods", "ns"), False),
        (rule(["deletecollection"], [""], ["pods"], resourceNames=["p1"]), req("deletecollection", "pods", "ns"), False),
        # a list or watch with fieldSelector=metadata.name=p1 carries that name
        (rule(["list", "watch"], [""], ["pods"], resourceNames=["p1"]), req("watch", "pods", "ns", "p1"), True),
        (rule(["*"], ["*"], ["*"], resourceNames=["p1"]), req("update", "pods", "ns", "p1", subresource="status"), True),
        (rule(["get"], [""], ["pods"], resourceNames=[]), req("get", "pods", "ns", "any"), True),
        # a resource rule grants no path, a path rule no resource
        (rule(["get"], ["*"], ["*"]), non_resource_request("get", "/version"), False),
        (rule(["get"], nonResourceURLs=["*"]), req("get", "pods", "ns"), False),
        # nonResourceURLs
        (rule(["get"], nonResourceURLs=["/version"]), non_resource_request("get", "/version"), True),
        (rule(["get"], nonResourceURLs=["/version"]), non_resource_request("get", "/version/"), False),
        (rule(["get"], nonResourceURLs=["/version"]), non_resource_request("post", "/version"), False),
        (rule(["get"], nonResourceURLs=["/apis/*"]), non_resource_request("get", "/apis/danm.io/v1"), True),
        (rule(["get"], nonResourceURLs=["/apis/*"]), non_resource_request("get", "/apis/"), True),
        (rule(["get"], nonResourceURLs=["/apis/*"]), non_resource_request("get", "/apis"), False),
        (rule(["get"], nonResourceURLs=["/healthz*"]), non_resource_request("get", "/healthz/etcd"), True),
        (rule(["get"], nonResourceURLs=["/healthz*"]), non_resource_request("get", "/healthzfoo"), True),
        (rule(["get"], nonResourceURLs=["/healthz**"]), non_resource_request("get", "/healthz"), True),
        (rule(["get"], nonResourceURLs=["*"]), non_resource_request("get", "/anything/at/all"), True),
        (rule(["*"], nonResourceURLs=["/metrics"]), non_resource_request("get", "/metrics"), True),
        (rule(["get"], nonResourceURLs=["/metrics"]), non_resource_request("get", "/metrics/cadvisor"), False),
    ],
)
def test_rule_forms(policy: Obj, request_: RequestAttributes, allowed: bool) -> None:
    assert rule_allows(policy, request_) is allowed


def test_malformed_rule_fields_match_nothing() -> None:
    assert not rule_allows({"verbs": "get", "apiGroups": [""], "resources": ["pods"]}, req("get", "pods", "ns"))
    assert not rule_allows({"verbs": ["get"], "apiGroups": [""], "resources": [7]}, req("get", "pods", "ns"))


# --- Bindings and scopes

READ_PODS = rule(["get", "list", "watch"], [""], ["pods"])


def test_cluster_role_binding_grants_everywhere() -> None:
    authorizer = Authorizer(
        [], [cluster_role("reader", [READ_PODS])], [], [cluster_role_binding("b", ref("ClusterRole", "reader"), [user("alice")])]
    )
    for namespace in ("default", "kube-system", ""):
        decision = authorizer.authorize(ALICE, req("list", "pods", namespace))
        assert decision == Decision(True, 'RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "reader" to User "alice"')
    assert not authorizer.authorize(ALICE, req("delete", "pods", "default", "p")).allowed
    assert not authorizer.authorize(UserInfo("bob", ["system:authenticated"]), req("list", "pods", "default")).allowed


def test_role_binding_grants_only_in_its_namespace() -> None:
    authorizer = Authorizer(
        [],
        [cluster_role("reader", [READ_PODS])],
        [role_binding("team", "b", ref("ClusterRole", "reader"), [user("alice")])],
        [],
    )
    assert authorizer.authorize(ALICE, req("get", "pods", "team", "p")) == Decision(
        True, 'RBAC: allowed by RoleBinding "b/team" of ClusterRole "reader" to User "alice"'
    )
    assert authorizer.authorize(ALICE, req("get", "pods", "other", "p")) == Decision(False, "")
    # all-namespaces and cluster-scoped requests consult only ClusterRoleBindings
    assert not authorizer.authorize(ALICE, req("list", "pods", "")).allowed


def test_role_binding_to_role_uses_the_role_of_its_own_namespace() -> None:
    roles = [role("team", "edit", [rule(["*"], [""], ["configmaps"])]), role("other", "only-there", [READ_PODS])]
    bindings = [
        role_binding("team", "edit-b", ref("Role", "edit"), [user("alice")]),
        role_binding("team", "elsewhere", ref("Role", "only-there"), [user("alice")]),
    ]
    authorizer = Authorizer(roles, [], bindings, [])
    assert authorizer.authorize(ALICE, req("create", "configmaps", "team")).allowed
    assert not authorizer.authorize(ALICE, req("create", "configmaps", "other")).allowed
    # the Role "only-there" lives in "other", so the binding in "team" finds nothing
    assert authorizer.authorize(ALICE, req("get", "pods", "team", "p")) == Decision(
        False, 'RBAC: role.rbac.authorization.k8s.io "only-there" not found'
    )


def test_cluster_role_binding_cannot_reference_a_role() -> None:
    authorizer = Authorizer(
        [role("team", "r", [READ_PODS])], [], [], [cluster_role_binding("b", ref("Role", "r"), [user("alice")])]
    )
    assert authorizer.authorize(ALICE, req("get", "pods", "team", "p")) == Decision(
        False, 'RBAC: role.rbac.authorization.k8s.io "r" not found'
    )


def test_role_rules_never_reach_cluster_scoped_resources() -> None:
    authorizer = Authorizer(
        [role("team", "all", [rule(["*"], ["*"], ["*"])])], [], [role_binding("team", "b", ref("Role", "all"), [user("alice")])], []
    )
    assert authorizer.authorize(ALICE, req("delete", "danmeps", "team", "x", group_="danm.io")).allowed
    assert not authorizer.authorize(ALICE, req("list", "clusternetworks", group_="danm.io")).allowed
    assert not authorizer.authorize(ALICE, req("get", "namespaces", name="team")).allowed


# --- Subjects


def test_service_account_subjects() -> None:
    reader = [cluster_role("reader", [READ_PODS])]
    explicit = Authorizer([], reader, [], [cluster_role_binding("b", ref("ClusterRole", "reader"), [sa("danm", "kube-system")])])
    assert explicit.authorize(DANM, req("get", "pods", "default", "p")) == Decision(
        True, 'RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "reader" to ServiceAccount "danm/kube-system"'
    )
    assert not explicit.authorize(service_account_user("default", "danm"), req("get", "pods", "default", "p")).allowed

    # without a namespace, a RoleBinding's ServiceAccount subject is in the binding's namespace
    defaulted = Authorizer([], reader, [role_binding("team", "b", ref("ClusterRole", "reader"), [sa("bot")])], [])
    assert defaulted.authorize(service_account_user("team", "bot"), req("get", "pods", "team", "p")) == Decision(
        True, 'RBAC: allowed by RoleBinding "b/team" of ClusterRole "reader" to ServiceAccount "bot/team"'
    )
    assert not defaulted.authorize(service_account_user("other", "bot"), req("get", "pods", "team", "p")).allowed

    # a RoleBinding may name a ServiceAccount of another namespace
    foreign = Authorizer([], reader, [role_binding("team", "b", ref("ClusterRole", "reader"), [sa("danm", "kube-system")])], [])
    assert foreign.authorize(DANM, req("get", "pods", "team", "p")).allowed
    assert not foreign.authorize(DANM, req("get", "pods", "kube-system", "p")).allowed

    # a ClusterRoleBinding's ServiceAccount subject without a namespace matches nobody
    nowhere = Authorizer([], reader, [], [cluster_role_binding("b", ref("ClusterRole", "reader"), [sa("danm")])])
    assert not nowhere.authorize(DANM, req("get", "pods", "kube-system", "p")).allowed


def test_group_subjects() -> None:
    reader = [cluster_role("reader", [READ_PODS])]
    per_namespace = Authorizer(
        [], reader, [], [cluster_role_binding("b", ref("ClusterRole", "reader"), [group("system:serviceaccounts:kube-system")])]
    )
    assert per_namespace.authorize(DANM, req("list", "pods", "default")) == Decision(
        True, 'RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "reader" to Group "system:serviceaccounts:kube-system"'
    )
    assert not per_namespace.authorize(service_account_user("default", "x"), req("list", "pods", "default")).allowed
    assert not per_namespace.authorize(ALICE, req("list", "pods", "default")).allowed

    authenticated = Authorizer([], reader, [], [cluster_role_binding("b", ref("ClusterRole", "reader"), [group("system:authenticated")])])
    assert authenticated.authorize(ALICE, req("list", "pods", "default")).allowed
    assert authenticated.authorize(DANM, req("list", "pods", "default")).allowed
    assert not authenticated.authorize(UserInfo("system:anonymous", ["system:unauthenticated"]), req("list", "pods", "x")).allowed


def test_user_subject_and_unknown_kinds() -> None:
    reader = [cluster_role("reader", [READ_PODS])]
    # a User subject spelled as a ServiceAccount's username names that ServiceAccount (upstream compares names)
    spelled = Authorizer([], reader, [], [cluster_role_binding("b", ref("ClusterRole", "reader"), [user(DANM.username)])])
    assert spelled.authorize(DANM, req("get", "pods", "x", "p")).allowed
    # a Group subject is not a username, nor a User a group
    crossed = Authorizer(
        [], reader, [], [cluster_role_binding("b", ref("ClusterRole", "reader"), [group("alice"), user("system:authenticated")])]
    )
    assert not crossed.authorize(ALICE, req("get", "pods", "x", "p")).allowed
    odd = Authorizer([], reader, [], [cluster_role_binding("b", ref("ClusterRole", "reader"), [{"kind": "Robot", "name": "alice"}])])
    assert not odd.authorize(ALICE, req("get", "pods", "x", "p")).allowed


def test_reason_names_the_first_subject_that_applies() -> None:
    authorizer = Authorizer(
        [],
        [cluster_role("reader", [READ_PODS])],
        [],
        [
            cluster_role_binding("nobody", ref("ClusterRole", "reader"), [user("bob")]),
            cluster_role_binding(
                "b", ref("ClusterRole", "reader"), [user("carol"), group("system:authenticated"), user("alice")]
            ),
        ],
    )
    assert authorizer.authorize(ALICE, req("get", "pods", "x", "p")).reason == (
        'RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "reader" to Group "system:authenticated"'
    )


def test_cluster_role_bindings_are_consulted_before_role_bindings_in_order() -> None:
    reader = cluster_role("reader", [READ_PODS])
    authorizer = Authorizer(
        [],
        [reader],
        [role_binding("x", "local", ref("ClusterRole", "reader"), [user("alice")])],
        [
            cluster_role_binding("second", ref("ClusterRole", "reader"), [group("system:authenticated")]),
            cluster_role_binding("first", ref("ClusterRole", "reader"), [user("alice")]),
        ],
    )
    # binding order, whichever index (user or group) found the binding
    assert authorizer.authorize(ALICE, req("get", "pods", "x", "p")).reason == (
        'RBAC: allowed by ClusterRoleBinding "second" of ClusterRole "reader" to Group "system:authenticated"'
    )


def test_system_masters_is_always_allowed() -> None:
    admin = UserInfo("admin", ["system:masters", "system:authenticated"])
    empty = Authorizer([], [], [], [])
    assert empty.authorize(admin, req("delete", "pods", "default", "p")) == Decision(True, "")
    assert empty.authorize(admin, non_resource_request("get", "/metrics")) == Decision(True, "")
    assert empty.authorize(ALICE, non_resource_request("get", "/metrics")) == Decision(False, "")
    # by group only: a user named after the group is nobody special
    assert not empty.authorize(UserInfo("system:masters"), req("get", "pods", "x", "p")).allowed


# --- Role resolution errors


def test_missing_roles_are_reported_only_for_bindings_that_apply() -> None:
    authorizer = Authorizer(
        [],
        [],
        [
            role_binding("team", "r1", ref("Role", "gone-role"), [user("alice")]),
            role_binding("team", "r2", ref("ClusterRole", "gone"), [user("alice")]),
            role_binding("team", "not-mine", ref("Role", "other-gone"), [user("bob")]),
        ],
        [
            cluster_role_binding("c1", ref("ClusterRole", "gone"), [user("alice")]),
            cluster_role_binding("c2", ref("Kind", "x"), [user("alice")]),
        ],
    )
    decision = authorizer.authorize(ALICE, req("get", "pods", "team", "p"))
    assert decision == Decision(
        False,
        'RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, '
        'unsupported role reference kind: "Kind", role.rbac.authorization.k8s.io "gone-role" not found]',
    )
    # at the cluster scope only the ClusterRoleBindings count
    assert authorizer.authorize(ALICE, req("list", "nodes")).reason == (
        'RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, unsupported role reference kind: "Kind"]'
    )
    assert authorizer.authorize(UserInfo("carol"), req("get", "pods", "team", "p")) == Decision(False, "")


def test_an_allowing_binding_wins_over_broken_ones() -> None:
    authorizer = Authorizer(
        [],
        [cluster_role("reader", [READ_PODS])],
        [],
        [
            cluster_role_binding("broken", ref("ClusterRole", "gone"), [user("alice")]),
            cluster_role_binding("ok", ref("ClusterRole", "reader"), [user("alice")]),
        ],
    )
    assert authorizer.authorize(ALICE, req("get", "pods", "x", "p")) == Decision(
        True, 'RBAC: allowed by ClusterRoleBinding "ok" of ClusterRole "reader" to User "alice"'
    )
    assert authorizer.authorize(ALICE, req("delete", "pods", "x", "p")) == Decision(
        False, 'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found'
    )


# --- Aggregation

AGGREGATE_TO_VIEW = {"matchLabels": {"rbac.example.com/aggregate-to-view": "true"}}


def test_aggregated_cluster_role_collects_selected_rules() -> None:
    view = cluster_role("view", [rule(["delete"], [""], ["secrets"])], selectors=[AGGREGATE_TO_VIEW])
    pods = cluster_role("pods-view", [READ_PODS], labels={"rbac.example.com/aggregate-to-view": "true"})
    nets = cluster_role(
        "danm-view",
        [rule(["get", "list", "watch"], ["danm.io"], ["danmnets"])],
        labels={"rbac.example.com/aggregate-to-view": "true"},
    )
    unlabelled = cluster_role("other", [rule(["*"], ["*"], ["*"])])
    binding = cluster_role_binding("v", ref("ClusterRole", "view"), [user("alice")])
    authorizer = Authorizer([], [view, pods, nets, unlabelled], [], [binding])
    assert authorizer.authorize(ALICE, req("list", "pods", "x")).allowed
    assert authorizer.authorize(ALICE, req("watch", "danmnets", "x", group_="danm.io")).allowed
    assert not authorizer.authorize(ALICE, req("create", "configmaps", "x")).allowed
    # the aggregating role's own rules are replaced, as the aggregation controller does
    assert not authorizer.authorize(ALICE, req("delete", "secrets", "x", "s")).allowed
    # via a RoleBinding too, within its namespace
    local = Authorizer([], [view, pods], [role_binding("team", "v", ref("ClusterRole", "view"), [user("alice")])], [])
    assert local.authorize(ALICE, req("list", "pods", "team")).allowed
    assert not local.authorize(ALICE, req("list", "pods", "elsewhere")).allowed
    # a later labelled ClusterRole joins once the authorizer is rebuilt
    later = cluster_role("cm-view", [rule(["get"], [""], ["configmaps"])], labels={"rbac.example.com/aggregate-to-view": "true"})
    assert Authorizer([], [view, pods, later], [], [binding]).authorize(ALICE, req("get", "configmaps", "x", "c")).allowed


def test_effective_rules_are_deduplicated_ordered_and_transitive() -> None:
    same = rule(["get"], [""], ["pods"])
    roles = [
        cluster_role("top", selectors=[{"matchLabels": {"tier": "mid"}}]),
        cluster_role("mid", labels={"tier": "mid"}, selectors=[{"matchExpressions": [{"key": "leaf", "operator": "Exists"}]}]),
        cluster_role("b-leaf", [same, rule(["list"], [""], ["pods"])], labels={"leaf": "1"}),
        cluster_role("a-leaf", [same], labels={"leaf": "2"}),
        cluster_role("plain", [rule(["watch"], [""], ["pods"])]),
    ]
    effective = effective_cluster_role_rules(roles)
    assert effective["mid"] == [same, rule(["list"], [""], ["pods"])]
    assert effective["top"] == effective["mid"]
    assert effective["plain"] == [rule(["watch"], [""], ["pods"])]
    assert set(effective) == {"top", "mid", "b-leaf", "a-leaf", "plain"}


def test_aggregation_excludes_itself_and_settles_cycles() -> None:
    roles = [
        cluster_role("a", [rule(["delete"], [""], ["pods"])], labels={"ring": "x"}, selectors=[{"matchLabels": {"ring": "x"}}]),
        cluster_role("b", labels={"ring": "x"}, selectors=[{"matchLabels": {"ring": "x"}}]),
        cluster_role("leaf", [READ_PODS], labels={"ring": "x"}),
    ]
    effective = effective_cluster_role_rules(roles)
    assert effective["a"] == [READ_PODS]
    assert effective["b"] == [READ_PODS]
    # an empty selector selects every other ClusterRole; an invalid one selects none
    everything = effective_cluster_role_rules(
        [cluster_role("all", selectors=[{}]), cluster_role("x", [READ_PODS]), cluster_role("y", [rule(["get"], [""], ["nodes"])])]
    )
    assert everything["all"] == [READ_PODS, rule(["get"], [""], ["nodes"])]
    invalid = effective_cluster_role_rules(
        [cluster_role("bad", selectors=[{"matchLabels": {"bad key!": "v"}}]), cluster_role("x", [READ_PODS])]
    )
    assert invalid["bad"] == []


# --- Non-resource URLs


def test_non_resource_urls_only_through_cluster_role_bindings() -> None:
    info = cluster_role("info", [rule(["get"], nonResourceURLs=["/version", "/apis/*"])])
    via_cluster = Authorizer([], [info], [], [cluster_role_binding("i", ref("ClusterRole", "info"), [user("alice")])])
    assert via_cluster.authorize(ALICE, non_resource_request("get", "/version")) == Decision(
        True, 'RBAC: allowed by ClusterRoleBinding "i" of ClusterRole "info" to User "alice"'
    )
    assert via_cluster.authorize(ALICE, non_resource_request("get", "/apis/danm.io")).allowed
    assert not via_cluster.authorize(ALICE, non_resource_request("get", "/healthz")).allowed
    via_namespace = Authorizer([], [info], [role_binding("default", "i", ref("ClusterRole", "info"), [user("alice")])], [])
    assert not via_namespace.authorize(ALICE, non_resource_request("get", "/version")).allowed


def test_bootstrap_policy_lets_every_authenticated_client_discover() -> None:
    cluster_roles, bindings = bootstrap_policy()
    authorizer = Authorizer([], cluster_roles, [], bindings)
    for path in ("/version", "/api", "/api/v1", "/apis", "/apis/danm.io/v1", "/healthz", "/readyz", "/livez", "/openapi/v2"):
        assert authorizer.authorize(DANM, non_resource_request("get", path)).allowed, path
    assert authorizer.authorize(DANM, non_resource_request("get", "/apis")).reason == (
        'RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" '
        'to Group "system:authenticated"'
    )
    assert not authorizer.authorize(DANM, non_resource_request("get", "/metrics")).allowed
    assert not authorizer.authorize(DANM, req("list", "pods", "default")).allowed
    assert authorizer.authorize(
        DANM, req("create", "selfsubjectaccessreviews", group_="authorization.k8s.io")
    ).allowed
    anonymous = UserInfo("system:anonymous", ["system:unauthenticated"])
    assert authorizer.authorize(anonymous, non_resource_request("get", "/version")).allowed
    assert not authorizer.authorize(anonymous, non_resource_request("get", "/apis")).allowed
    # cluster-admin reaches system:masters through RBAC too (and a fresh copy each call)
    admin = UserInfo("admin", ["system:masters"])
    assert Authorizer([], cluster_roles, [], bindings).authorize(admin, req("delete", "nodes", name="n")).allowed
    assert bootstrap_policy() == (cluster_roles, bindings)
    assert bootstrap_policy()[0][0] is not cluster_roles[0]


# --- The 403 message and Status


@pytest.mark.parametrize(
    ("info", "request_", "message"),
    [
        (
            DANM,
            req("delete", "pods", "default", "p1"),
            'pods "p1" is forbidden: User "system:serviceaccount:kube-system:danm" cannot delete resource "pods" '
            'in API group "" in the namespace "default"',
        ),
        (
            UserInfo("u"),
            req("list", "pods", "default"),
            'pods is forbidden: User "u" cannot list resource "pods" in API group "" in the namespace "default"',
        ),
        (
            UserInfo("u"),
            req("list", "clusternetworks", group_="danm.io"),
            'clusternetworks.danm.io is forbidden: User "u" cannot list resource "clusternetworks" '
            'in API group "danm.io" at the cluster scope',
        ),
        (
            UserInfo("u"),
            req("get", "clusternetworks", name="c1", group_="danm.io"),
            'clusternetworks.danm.io "c1" is forbidden: User "u" cannot get resource "clusternetworks" '
            'in API group "danm.io" at the cluster scope',
        ),
        (
            UserInfo("u"),
            req("update", "pods", "ns", "p1", subresource="status"),
            'pods "p1" is forbidden: User "u" cannot update resource "pods/status" in API group "" in the namespace "ns"',
        ),
        (
            UserInfo("u"),
            req("list", "pods"),
            'pods is forbidden: User "u" cannot list resource "pods" in API group "" at the cluster scope',
        ),
        (
            UserInfo("u"),
            non_resource_request("get", "/version"),
            'forbidden: User "u" cannot get path "/version"',
        ),
        (
            UserInfo('we"ird\n'),
            req("get", "pods", "ns", "p\\1"),
            'pods "p\\\\1" is forbidden: User "we\\"ird\\n" cannot get resource "pods" in API group "" in the namespace "ns"',
        ),
    ],
)
def test_forbidden_message_wording(info: UserInfo, request_: RequestAttributes, message: str) -> None:
    assert forbidden_message(info, request_) == message


def test_forbidden_message_appends_the_reason() -> None:
    authorizer = Authorizer([], [], [], [cluster_role_binding("b", ref("ClusterRole", "gone"), [user("alice")])])
    request_ = req("get", "pods", "default", "p1")
    decision = authorizer.authorize(ALICE, request_)
    assert forbidden_message(ALICE, request_, decision.reason) == (
        'pods "p1" is forbidden: User "alice" cannot get resource "pods" in API group "" in the namespace "default": '
        'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found'
    )
    assert forbidden_message(ALICE, non_resource_request("get", "/version"), decision.reason) == (
        'forbidden: User "alice" cannot get path "/version": RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found'
    )


def test_forbidden_status_body() -> None:
    status = forbidden_status(UserInfo("u"), req("get", "clusternetworks", name="c1", group_="danm.io"))
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'clusternetworks.danm.io "c1" is forbidden: User "u" cannot get resource "clusternetworks" '
        'in API group "danm.io" at the cluster scope',
        "reason": "Forbidden",
        "details": {"name": "c1", "group": "danm.io", "kind": "clusternetworks"},
        "code": 403,
    }
    assert forbidden_status(UserInfo("u"), req("list", "pods", "ns", subresource=""))["details"] == {"kind": "pods"}
    assert forbidden_status(UserInfo("u"), req("update", "pods", "ns", "p", subresource="status"))["details"] == {
        "name": "p",
        "kind": "pods",
    }
    assert forbidden_status(UserInfo("u"), non_resource_request("get", "/version"))["details"] == {}


# --- The original DANM's policy


def caas_danm() -> Obj:
    """ClusterRole caas:danm as reference spec §10.3 lists it."""
    return cluster_role(
        "caas:danm",
        [
            rule(["*"], ["danm.io"], ["danmnets", "danmeps", "tenantnetworks", "clusternetworks"]),
            rule(["get", "watch", "list"], [""], ["pods"]),
        ],
    )


def test_reference_spec_lists_the_caas_danm_rules_used_here() -> None:
    text = (shared_dir() / "spec" / "danm-reference.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if "`caas:danm`" in line)
    assert "danmnets, danmeps, tenantnetworks, clusternetworks`: `*`" in row
    assert "core `pods`: get, watch, list" in row


def test_danm_service_account_under_caas_danm() -> None:
    authorizer = Authorizer(
        [],
        [caas_danm()],
        [],
        [cluster_role_binding("caas:danm", ref("ClusterRole", "caas:danm"), [sa("danm", "kube-system")])],
    )
    allowed = [
        req("create", "danmeps", "default", group_="danm.io"),
        req("delete", "danmeps", "default", "ep1", group_="danm.io"),
        req("deletecollection", "danmeps", "default", group_="danm.io"),
        req("patch", "danmeps", "default", "ep1", group_="danm.io"),
        req("watch", "danmeps", "", group_="danm.io"),
        req("get", "clusternetworks", name="c", group_="danm.io"),
        req("get", "pods", "default", "p1"),
        req("list", "pods", ""),
        req("watch", "pods", "kube-system"),
    ]
    for request_ in allowed:
        decision = authorizer.authorize(DANM, request_)
        assert decision.reason == (
            'RBAC: allowed by ClusterRoleBinding "caas:danm" of ClusterRole "caas:danm" to '
            'ServiceAccount "danm/kube-system"'
        ), request_
    refused = [
        req("delete", "pods", "default", "p1"),
        req("update", "pods", "default", "p1", subresource="status"),
        # "danmeps" does not cover its subresources
        req("update", "danmeps", "default", "ep1", subresource="status", group_="danm.io"),
        req("create", "pods", "default"),
        req("get", "tenantconfigs", "default", "t", group_="danm.io"),
        req("get", "danmeps", "default", "ep1", group_="danm.k8s.io"),
        req("get", "services", "default", "s"),
    ]
    for request_ in refused:
        assert authorizer.authorize(DANM, request_) == Decision(False, ""), request_
    assert forbidden_message(DANM, refused[0]) == (
        'pods "p1" is forbidden: User "system:serviceaccount:kube-system:danm" cannot delete resource "pods" '
        'in API group "" in the namespace "default"'
    )
    # another ServiceAccount of kube-system gains nothing from the binding
    assert not authorizer.authorize(service_account_user("kube-system", "netwatcher"), allowed[0]).allowed


def test_danm_webhook_manifest() -> None:
    path = shared_dir() / "danm-manifests" / "integration" / "manifests" / "webhook" / "webhook.yaml"
    documents = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(doc, dict)]
    cluster_roles = [doc for doc in documents if doc["kind"] == "ClusterRole"]
    bindings = [doc for doc in documents if doc["kind"] == "ClusterRoleBinding"]
    assert [doc["metadata"]["name"] for doc in cluster_roles] == ["caas:danm-webhook"]
    webhook = service_account_user("kube-system", "danm-webhook")
    decision = authorize(webhook, req("update", "tenantconfigs", "default", "t", group_="danm.io"), [], cluster_roles, [], bindings)
    assert decision == Decision(
        True,
        'RBAC: allowed by ClusterRoleBinding "caas:danm-webhook" of ClusterRole "caas:danm-webhook" to '
        'ServiceAccount "danm-webhook/kube-system"',
    )
    assert authorize(webhook, req("list", "danmeps", "", group_="danm.io"), [], cluster_roles, [], bindings).allowed
    refused = req("get", "clusternetworks", name="c1", group_="danm.io")
    assert authorize(webhook, refused, [], cluster_roles, [], bindings) == Decision(False, "")
    assert forbidden_message(webhook, refused) == (
        'clusternetworks.danm.io "c1" is forbidden: User "system:serviceaccount:kube-system:danm-webhook" '
        'cannot get resource "clusternetworks" in API group "danm.io" at the cluster scope'
    )
    assert not authorize(DANM, req("list", "danmeps", "", group_="danm.io"), [], cluster_roles, [], bindings).allowed


# --- The index agrees with a plain reading of upstream's algorithm


def reference_decision(
    info: UserInfo, request_: RequestAttributes, roles: list[Obj], cluster_roles: list[Obj], rbs: list[Obj], crbs: list[Obj]
) -> bool:
    """Upstream's VisitRulesFor + appliesTo + RuleAllows, transliterated without any index."""
    if "system:masters" in info.groups:
        return True

    def applies(subject: Obj, namespace: str) -> bool:
        if subject["kind"] == "User":
            return bool(info.username == subject["name"])
        if subject["kind"] == "Group":
            return subject["name"] in info.groups
        if subject["kind"] == "ServiceAccount":
            ns = subject.get("namespace") or namespace
            return bool(ns) and info.username == f"system:serviceaccount:{ns}:{subject['name']}"
        return False

    def rules_of(role_ref: Obj, namespace: str) -> list[Obj]:
        if role_ref["kind"] == "Role":
            found = [r for r in roles if r["metadata"]["namespace"] == namespace and r["metadata"]["name"] == role_ref["name"]]
        else:
            found = [r for r in cluster_roles if r["metadata"]["name"] == role_ref["name"]]
        return list(found[0].get("rules", [])) if found else []

    candidates = [(b, "") for b in crbs]
    if request_.namespace:
        candidates += [(b, request_.namespace) for b in rbs if b["metadata"]["namespace"] == request_.namespace]
    for binding, namespace in candidates:
        if not any(applies(subject, namespace) for subject in binding["subjects"]):
            continue
        if any(rule_allows(r, request_) for r in rules_of(binding["roleRef"], namespace)):
            return True
    return False


NAMES = ["a", "b"]
NAMESPACES = ["n1", "n2"]
st_rule = st.builds(
    rule,
    st.lists(st.sampled_from(["get", "list", "*"]), max_size=2),
    st.lists(st.sampled_from(["", "danm.io", "*"]), max_size=2),
    st.lists(st.sampled_from(["pods", "pods/status", "*/status", "danmeps", "*"]), max_size=2),
)
st_subject = st.one_of(
    st.builds(user, st.sampled_from(["alice", "system:serviceaccount:n1:a"])),
    st.builds(group, st.sampled_from(["system:authenticated", "system:serviceaccounts:n1", "devs"])),
    st.builds(sa, st.sampled_from(NAMES), st.sampled_from([None, *NAMESPACES])),
)
st_ref = st.builds(ref, st.sampled_from(["Role", "ClusterRole"]), st.sampled_from(NAMES))
st_user = st.one_of(
    st.builds(service_account_user, st.sampled_from(NAMESPACES), st.sampled_from(NAMES)),
    st.just(UserInfo("alice", ["devs", "system:authenticated"])),
)
st_request = st.builds(
    req,
    st.sampled_from(["get", "list", "delete"]),
    st.sampled_from(["pods", "danmeps"]),
    st.sampled_from(["", *NAMESPACES]),
    st.sampled_from(["", "x"]),
    st.sampled_from(["", "danm.io"]),
    st.sampled_from(["", "status"]),
)


@settings(max_examples=300, deadline=None)
@given(
    roles=st.lists(st.builds(role, st.sampled_from(NAMESPACES), st.sampled_from(NAMES), st.lists(st_rule, max_size=2)), max_size=3),
    cluster_roles=st.lists(st.builds(cluster_role, st.sampled_from(NAMES), st.lists(st_rule, max_size=2)), max_size=2, unique_by=lambda r: r["metadata"]["name"]),
    rbs=st.lists(
        st.builds(role_binding, st.sampled_from(NAMESPACES), st.sampled_from(NAMES), st_ref, st.lists(st_subject, max_size=3)),
        max_size=3,
    ),
    crbs=st.lists(st.builds(cluster_role_binding, st.sampled_from(NAMES), st_ref, st.lists(st_subject, max_size=3)), max_size=3),
    info=st_user,
    request_=st_request,
)
def test_authorizer_agrees_with_reference(
    roles: list[Obj], cluster_roles: list[Obj], rbs: list[Obj], crbs: list[Obj], info: UserInfo, request_: RequestAttributes
) -> None:
    # duplicate Roles (same namespace and name) cannot exist in a cluster: keep the last, as the index does
    unique_roles = list({(r["metadata"]["namespace"], r["metadata"]["name"]): r for r in roles}.values())
    expected = reference_decision(info, request_, unique_roles, cluster_roles, rbs, crbs)
    decision = Authorizer(unique_roles, cluster_roles, rbs, crbs).authorize(info, request_)
    assert decision.allowed is expected
    assert decision.reason.startswith("RBAC: allowed by ") if expected else not decision.reason.startswith("RBAC: allowed")
