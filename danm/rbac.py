"""Kubernetes RBAC: who may do what, decided as kube-apiserver's RBAC authorizer decides it.

Pure: the inputs are Roles, ClusterRoles, RoleBindings and ClusterRoleBindings
(``rbac.authorization.k8s.io/v1``) as plain dicts, a :class:`UserInfo` and a
:class:`RequestAttributes`; the outputs are a :class:`Decision` and, for refusals, kube's 403
message and Status body.

Semantics (upstream ``plugin/pkg/auth/authorizer/rbac`` and ``pkg/registry/rbac/validation``):

* Members of ``system:masters`` are always allowed (kube's privileged-group authorizer, which
  runs before RBAC), with an empty reason.
* ClusterRoleBindings grant their role everywhere; RoleBindings grant theirs only to requests in
  their own namespace, and may reference a Role of that namespace or a ClusterRole. Cluster-scoped
  and all-namespaces requests (namespace ``""``), and non-resource requests, consult only
  ClusterRoleBindings. A ClusterRoleBinding naming a Role finds none (kube looks it up in
  namespace ``""``).
* Subjects: ``User`` (username), ``Group`` (one of the user's groups), ``ServiceAccount``
  (username ``system:serviceaccount:NS:NAME``; a RoleBinding's subject without a namespace means
  the binding's namespace). Other kinds never match.
* A rule allows a resource request when a verb matches (or ``*``), an API group matches (or
  ``*``), a resource matches (``*``; the exact ``resource`` or ``resource/subresource``; or
  ``*/subresource`` for any resource's subresource; kube has no ``resource/*`` form) and, if the
  rule lists ``resourceNames``, the request's name is one of them. Creates, and lists, watches
  and deletecollections without a name, have no name, so they never match a rule that lists
  ``resourceNames``. (kube-apiserver gives a list or watch the name of a
  ``fieldSelector=metadata.name=X``; that is the request parser's job, not this module's.)
* A rule allows a non-resource request (``/version``, ``/apis``, ``/healthz``...) when a verb
  matches and a ``nonResourceURLs`` entry equals the path, is ``*``, or ends in ``*`` and is a
  prefix of the path once its trailing stars are removed. ``apiGroups`` and ``resources`` play no
  part there.
* Aggregated ClusterRoles (``aggregationRule.clusterRoleSelectors``) have the rules the
  aggregation controller would write: the union of the rules of every other ClusterRole a
  selector picks, transitively; their own stored ``rules`` are ignored, as the controller
  overwrites them.
* Reasons match upstream's: ``RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to
  ServiceAccount "sa/ns"``; a refusal carries ``RBAC: role.rbac.authorization.k8s.io "x" not
  found`` (several errors: ``RBAC: [e1, e2]``) when a binding that applies to the user names a
  missing role, and is empty otherwise.

:class:`Authorizer` indexes a snapshot of the four object lists once; build a new one whenever an
RBAC object changes and reuse it for every request in between.
"""

import re
from typing import Any, Final

from danm.errors import DanmError
from danm.labels import Selector, SelectorError, selector_from_structure

JsonObject = dict[str, Any]

RBAC_GROUP: Final = "rbac.authorization.k8s.io"
SERVICE_ACCOUNT_USERNAME_PREFIX: Final = "system:serviceaccount:"
SERVICE_ACCOUNTS_GROUP: Final = "system:serviceaccounts"
SERVICE_ACCOUNTS_GROUP_PREFIX: Final = "system:serviceaccounts:"
AUTHENTICATED_GROUP: Final = "system:authenticated"
UNAUTHENTICATED_GROUP: Final = "system:unauthenticated"
MASTERS_GROUP: Final = "system:masters"
ANONYMOUS_USER: Final = "system:anonymous"

KIND_USER: Final = "User"
KIND_GROUP: Final = "Group"
KIND_SERVICE_ACCOUNT: Final = "ServiceAccount"
KIND_ROLE: Final = "Role"
KIND_CLUSTER_ROLE: Final = "ClusterRole"

WILDCARD: Final = "*"

_DNS_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL_MAX: Final = 63
_DNS_SUBDOMAIN_MAX: Final = 253


class RbacError(DanmError):
    """Request attributes that no API request can have (a bug in the caller)."""


# --- Users


class UserInfo:
    """An authenticated user, as the authenticator hands it to authorization and admission."""

    def __init__(
        self,
        username: str,
        groups: list[str] | None = None,
        uid: str = "",
        extra: dict[str, list[str]] | None = None,
    ) -> None:
        self.username = username
        self.groups: list[str] = list(groups) if groups is not None else []
        self.uid = uid
        self.extra: dict[str, list[str]] = extra if extra is not None else {}

    def to_json(self) -> JsonObject:
        """authentication/v1 UserInfo: empty fields are omitted, as Go's omitempty does."""
        info: JsonObject = {"username": self.username}
        if self.uid:
            info["uid"] = self.uid
        if self.groups:
            info["groups"] = list(self.groups)
        if self.extra:
            info["extra"] = {key: list(values) for key, values in self.extra.items()}
        return info

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, UserInfo)
            and (self.username, self.groups, self.uid) == (other.username, other.groups, other.uid)
        )

    def __repr__(self) -> str:
        return f"UserInfo({self.username!r}, {self.groups!r}, {self.uid!r})"


def service_account_username(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_USERNAME_PREFIX}{namespace}:{name}"


def service_account_user(namespace: str, name: str, uid: str = "") -> UserInfo:
    """The user a ServiceAccount token authenticates as, with the groups kube gives it."""
    return UserInfo(
        service_account_username(namespace, name),
        [SERVICE_ACCOUNTS_GROUP, SERVICE_ACCOUNTS_GROUP_PREFIX + namespace, AUTHENTICATED_GROUP],
        uid,
    )


def parse_service_account_username(username: str) -> tuple[str, str] | None:
    """``(namespace, name)`` of ``system:serviceaccount:NS:NAME``, or None (kube's SplitUsername).

    The namespace must be a DNS-1123 label and the name a DNS-1123 subdomain.
    """
    if not username.startswith(SERVICE_ACCOUNT_USERNAME_PREFIX):
        return None
    parts = username[len(SERVICE_ACCOUNT_USERNAME_PREFIX) :].split(":")
    if len(parts) != 2:
        return None
    namespace, name = parts[0], parts[1]
    if len(namespace) > _DNS_LABEL_MAX or not _DNS_LABEL.match(namespace):
        return None
    if len(name) > _DNS_SUBDOMAIN_MAX or not _DNS_SUBDOMAIN.match(name):
        return None
    return namespace, name


# --- Requests and decisions


class RequestAttributes:
    """What a request asks to do.

    Resource requests: ``verb`` is the API verb (get, list, watch, create, update, patch, delete,
    deletecollection, or a special one such as use, bind, escalate, impersonate, approve),
    ``api_group`` is ``""`` for the core group, ``namespace`` is ``""`` for cluster-scoped and
    all-namespaces requests, and ``name`` is ``""`` for collection requests (create included).
    Non-resource requests (``is_resource_request=False``): ``path`` without the query, and the
    lowercased HTTP method as the verb (get, post, put, delete...).
    """

    def __init__(
        self,
        verb: str,
        api_group: str = "",
        resource: str = "",
        subresource: str = "",
        namespace: str = "",
        name: str = "",
        path: str = "",
        is_resource_request: bool = True,
    ) -> None:
        if not verb:
            raise RbacError("a request needs a verb")
        if is_resource_request:
            if not resource:
                raise RbacError("a resource request needs a resource")
            if path:
                raise RbacError("a resource request has no non-resource path")
        else:
            if not path.startswith("/"):
                raise RbacError(f"a non-resource path must start with '/': {path!r}")
            if api_group or resource or subresource or namespace or name:
                raise RbacError("a non-resource request has no group, resource, namespace or name")
        self.verb = verb
        self.api_group = api_group
        self.resource = resource
        self.subresource = subresource
        self.namespace = namespace
        self.name = name
        self.path = path
        self.is_resource_request = is_resource_request
        # The form rules name: "pods" or "pods/status".
        self.combined_resource = f"{resource}/{subresource}" if subresource else resource

    def __repr__(self) -> str:
        if not self.is_resource_request:
            return f"RequestAttributes({self.verb!r}, path={self.path!r}, is_resource_request=False)"
        return (
            f"RequestAttributes({self.verb!r}, api_group={self.api_group!r}, resource={self.resource!r}, "
            f"subresource={self.subresource!r}, namespace={self.namespace!r}, name={self.name!r})"
        )


def non_resource_request(verb: str, path: str) -> RequestAttributes:
    return RequestAttributes(verb, path=path, is_resource_request=False)


class Decision:
    """The verdict; ``reason`` is upstream's authorizer reason (the 403 message appends it)."""

    def __init__(self, allowed: bool, reason: str) -> None:
        self.allowed = allowed
        self.reason = reason

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Decision) and (self.allowed, self.reason) == (other.allowed, other.reason)

    def __repr__(self) -> str:
        return f"Decision({self.allowed!r}, {self.reason!r})"


# --- Field access on plain JSON objects (tolerant: a malformed field matches nothing)


def _strings(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def _field(obj: object, key: str) -> str:
    if not isinstance(obj, dict):
        return ""
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _metadata(obj: JsonObject) -> JsonObject:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _labels(obj: JsonObject) -> dict[str, str]:
    labels = _metadata(obj).get("labels")
    if not isinstance(labels, dict):
        return {}
    return {key: value for key, value in labels.items() if isinstance(key, str) and isinstance(value, str)}


def _rule_dicts(value: object) -> list[JsonObject]:
    if not isinstance(value, list):
        return []
    return [rule for rule in value if isinstance(rule, dict)]


# --- Rules


class _Rule:
    """One PolicyRule, compiled for matching."""

    def __init__(self, rule: JsonObject) -> None:
        verbs = _strings(rule.get("verbs"))
        groups = _strings(rule.get("apiGroups"))
        resources = _strings(rule.get("resources"))
        urls = _strings(rule.get("nonResourceURLs"))
        self.any_verb = WILDCARD in verbs
        self.verbs = frozenset(verbs)
        self.any_group = WILDCARD in groups
        self.groups = frozenset(groups)
        self.any_resource = WILDCARD in resources
        self.resources = frozenset(resources)
        self.names = frozenset(_strings(rule.get("resourceNames")))
        self.urls = frozenset(urls)
        # "*" becomes the empty prefix, which every path has.
        self.url_prefixes = [url.rstrip(WILDCARD) for url in urls if url.endswith(WILDCARD)]

    def allows(self, request: RequestAttributes) -> bool:
        if not (self.any_verb or request.verb in self.verbs):
            return False
        if not request.is_resource_request:
            if request.path in self.urls:
                return True
            for prefix in self.url_prefixes:
                if request.path.startswith(prefix):
                    return True
            return False
        if not (self.any_group or request.api_group in self.groups):
            return False
        if not (
            self.any_resource
            or request.combined_resource in self.resources
            or (request.subresource != "" and "*/" + request.subresource in self.resources)
        ):
            return False
        return not self.names or request.name in self.names


def _compile_rules(rules: list[JsonObject]) -> list[_Rule]:
    return [_Rule(rule) for rule in rules]


def rule_allows(rule: JsonObject, request: RequestAttributes) -> bool:
    """Whether one PolicyRule (a dict) covers the request (upstream's RuleAllows)."""
    return _Rule(rule).allows(request)


# --- Aggregated ClusterRoles


def _aggregation_selectors(cluster_role: JsonObject) -> list[Selector] | None:
    """The compiled selectors of an aggregating ClusterRole, or None when it aggregates nothing."""
    rule = cluster_role.get("aggregationRule")
    if not isinstance(rule, dict):
        return None
    selectors: list[Selector] = []
    raw_selectors = rule.get("clusterRoleSelectors")
    if not isinstance(raw_selectors, list):
        return selectors
    for raw in raw_selectors:
        if not isinstance(raw, dict):
            continue
        match_labels = raw.get("matchLabels")
        expressions = raw.get("matchExpressions")
        labels = (
            {str(key): str(value) for key, value in match_labels.items()}
            if isinstance(match_labels, dict)
            else None
        )
        exprs = [item for item in expressions if isinstance(item, dict)] if isinstance(expressions, list) else None
        try:
            selectors.append(selector_from_structure(labels, exprs))
        except SelectorError:
            continue  # kube refuses to store such a selector; here it selects nothing
    return selectors


def effective_cluster_role_rules(cluster_roles: list[JsonObject]) -> dict[str, list[JsonObject]]:
    """Every ClusterRole's rules by name, aggregated ones as the aggregation controller writes them.

    An aggregating role gets, selector by selector and role by role in name order, each rule of
    every other ClusterRole the selector picks, without duplicates. A picked role that aggregates
    contributes its aggregated rules, so aggregation is transitive; cycles settle on the rules
    reachable from non-aggregating roles (the controller's fixed point).
    """
    by_name: dict[str, JsonObject] = {}
    for role in cluster_roles:
        name = _field(_metadata(role), "name")
        if name:
            by_name[name] = role
    names = sorted(by_name)
    effective: dict[str, list[JsonObject]] = {}
    aggregating: dict[str, list[Selector]] = {}
    for name in names:
        selectors = _aggregation_selectors(by_name[name])
        if selectors is None:
            effective[name] = _rule_dicts(by_name[name].get("rules"))
        else:
            aggregating[name] = selectors
            effective[name] = []
    if not aggregating:
        return effective
    labels = {name: _labels(by_name[name]) for name in names}
    # Each pass rebuilds every aggregated role from the previous pass; rule sets only grow, so
    # this ends after at most one pass per aggregating role (plus one to notice nothing changed).
    for _ in range(len(aggregating) + 1):
        changed = False
        for name, selectors in aggregating.items():
            rules: list[JsonObject] = []
            for selector in selectors:
                for other in names:
                    if other == name or not selector.matches(labels[other]):
                        continue
                    for rule in effective[other]:
                        if rule not in rules:
                            rules.append(rule)
            if rules != effective[name]:
                effective[name] = rules
                changed = True
        if not changed:
            break
    return effective


# --- Bindings


class _Subject:
    def __init__(self, kind: str, key: str, description: str) -> None:
        self.kind = kind  # KIND_GROUP matches a group, anything else the username
        self.key = key
        self.description = description


class _Binding:
    """A binding that resolved (or failed to resolve) its role, with its applicable subjects."""

    def __init__(
        self,
        describe: str,
        subjects: list[_Subject],
        rules: list[_Rule],
        error: str,
    ) -> None:
        self.describe = describe  # 'ClusterRoleBinding "b" of ClusterRole "r" to '
        self.subjects = subjects
        self.rules = rules
        self.error = error  # "" when the role resolved

    def subject_for(self, user: UserInfo) -> _Subject | None:
        """The first subject naming the user, as upstream's appliesTo picks it."""
        for subject in self.subjects:
            if subject.kind == KIND_GROUP:
                if subject.key in user.groups:
                    return subject
            elif subject.key == user.username:
                return subject
        return None


_GO_ESCAPES: Final = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _go_quote(text: str) -> str:
    """Go's ``%q`` for strings (strconv.Quote), for names in messages."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return '"' + text + '"'
    out: list[str] = ['"']
    for char in text:
        code = ord(char)
        if char == '"' or char == "\\":
            out.append("\\" + char)
        elif char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char == " " or (char.isprintable() and not 0xD800 <= code <= 0xDFFF):
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _subjects(binding: JsonObject, binding_namespace: str) -> list[_Subject]:
    subjects: list[_Subject] = []
    raw_subjects = binding.get("subjects")
    if not isinstance(raw_subjects, list):
        return subjects
    for raw in raw_subjects:
        kind = _field(raw, "kind")
        name = _field(raw, "name")
        if kind == KIND_USER:
            subjects.append(_Subject(KIND_USER, name, f"{KIND_USER} {_go_quote(name)}"))
        elif kind == KIND_GROUP:
            subjects.append(_Subject(KIND_GROUP, name, f"{KIND_GROUP} {_go_quote(name)}"))
        elif kind == KIND_SERVICE_ACCOUNT:
            namespace = _field(raw, "namespace") or binding_namespace
            if not namespace:
                continue  # upstream: a ServiceAccount without a namespace matches nobody
            subjects.append(
                _Subject(
                    KIND_SERVICE_ACCOUNT,
                    service_account_username(namespace, name),
                    f"{KIND_SERVICE_ACCOUNT} {_go_quote(name + '/' + namespace)}",
                )
            )
        # other kinds never apply (upstream's appliesToUser returns false)
    return subjects


class _BindingSet:
    """Bindings in their given order, indexed by the usernames and groups their subjects name."""

    def __init__(self) -> None:
        self.bindings: list[_Binding] = []
        self.by_username: dict[str, list[int]] = {}
        self.by_group: dict[str, list[int]] = {}

    def add(self, binding: _Binding) -> None:
        index = len(self.bindings)
        self.bindings.append(binding)
        for subject in binding.subjects:
            table = self.by_group if subject.kind == KIND_GROUP else self.by_username
            entries = table.get(subject.key)
            if entries is None:
                table[subject.key] = [index]
            elif entries[-1] != index:
                entries.append(index)

    def candidates(self, user: UserInfo) -> list[int]:
        """Indices of the bindings that may apply to the user, in binding order."""
        found: list[int] = []
        entries = self.by_username.get(user.username)
        if entries is not None:
            found.extend(entries)
        for group in user.groups:
            entries = self.by_group.get(group)
            if entries is not None:
                found.extend(entries)
        if len(found) > 1:
            found = sorted(set(found))
        return found


def _not_found(resource: str, name: str) -> str:
    return f"{resource}.{RBAC_GROUP} {_go_quote(name)} not found"


def _aggregate_errors(errors: list[str]) -> str:
    """apimachinery's NewAggregate(errs).Error(): one message, or ``[a, b]`` without repeats."""
    unique: list[str] = []
    for error in errors:
        if error not in unique:
            unique.append(error)
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


# --- The authorizer


class Authorizer:
    """RBAC over one snapshot of Roles, ClusterRoles, RoleBindings and ClusterRoleBindings."""

    def __init__(
        self,
        roles: list[JsonObject],
        cluster_roles: list[JsonObject],
        role_bindings: list[JsonObject],
        cluster_role_bindings: list[JsonObject],
    ) -> None:
        self._roles: dict[tuple[str, str], list[_Rule]] = {}
        for role in roles:
            metadata = _metadata(role)
            key = (_field(metadata, "namespace"), _field(metadata, "name"))
            self._roles[key] = _compile_rules(_rule_dicts(role.get("rules")))
        self._cluster_roles: dict[str, list[_Rule]] = {}
        for name, rules in effective_cluster_role_rules(cluster_roles).items():
            self._cluster_roles[name] = _compile_rules(rules)
        self._cluster_bindings = _BindingSet()
        for binding in cluster_role_bindings:
            self._cluster_bindings.add(self._binding(binding, "ClusterRoleBinding", ""))
        self._namespace_bindings: dict[str, _BindingSet] = {}
        for binding in role_bindings:
            namespace = _field(_metadata(binding), "namespace")
            if not namespace:
                continue  # a RoleBinding outside any namespace applies to no request
            bindings = self._namespace_bindings.get(namespace)
            if bindings is None:
                bindings = _BindingSet()
                self._namespace_bindings[namespace] = bindings
            bindings.add(self._binding(binding, "RoleBinding", namespace))

    def _binding(self, binding: JsonObject, kind: str, namespace: str) -> _Binding:
        name = _field(_metadata(binding), "name")
        role_ref = binding.get("roleRef")
        role_kind = _field(role_ref, "kind")
        role_name = _field(role_ref, "name")
        shown_name = f"{name}/{namespace}" if namespace else name
        describe = f"{kind} {_go_quote(shown_name)} of {role_kind} {_go_quote(role_name)} to "
        rules: list[_Rule] = []
        error = ""
        if role_kind == KIND_ROLE:
            found = self._roles.get((namespace, role_name))
            if found is None:
                error = _not_found("role", role_name)
            else:
                rules = found
        elif role_kind == KIND_CLUSTER_ROLE:
            found = self._cluster_roles.get(role_name)
            if found is None:
                error = _not_found("clusterrole", role_name)
            else:
                rules = found
        else:
            error = f"unsupported role reference kind: {_go_quote(role_kind)}"
        return _Binding(describe, _subjects(binding, namespace), rules, error)

    def authorize(self, user: UserInfo, request: RequestAttributes) -> Decision:
        if MASTERS_GROUP in user.groups:
            return Decision(True, "")
        errors: list[str] = []
        allowed = _visit(self._cluster_bindings, user, request, errors)
        if allowed is not None:
            return Decision(True, allowed)
        if request.namespace:
            bindings = self._namespace_bindings.get(request.namespace)
            if bindings is not None:
                allowed = _visit(bindings, user, request, errors)
                if allowed is not None:
                    return Decision(True, allowed)
        return Decision(False, "RBAC: " + _aggregate_errors(errors) if errors else "")


def _visit(bindings: _BindingSet, user: UserInfo, request: RequestAttributes, errors: list[str]) -> str | None:
    """The allowing reason from the first binding whose rules cover the request, else None.

    Errors of bindings that apply to the user (missing roles) are appended to ``errors``.
    """
    for index in bindings.candidates(user):
        binding = bindings.bindings[index]
        subject = binding.subject_for(user)
        if subject is None:
            continue
        if binding.error:
            errors.append(binding.error)
            continue
        for rule in binding.rules:
            if rule.allows(request):
                return "RBAC: allowed by " + binding.describe + subject.description
    return None


def authorize(
    user: UserInfo,
    request: RequestAttributes,
    roles: list[JsonObject],
    cluster_roles: list[JsonObject],
    role_bindings: list[JsonObject],
    cluster_role_bindings: list[JsonObject],
) -> Decision:
    """One decision without keeping an index; the server should keep an :class:`Authorizer`."""
    return Authorizer(roles, cluster_roles, role_bindings, cluster_role_bindings).authorize(user, request)


# --- The 403 reply


def _group_resource(group: str, resource: str) -> str:
    """schema.GroupResource.String(): ``pods`` or ``clusternetworks.danm.io``."""
    return f"{resource}.{group}" if group else resource


def forbidden_message(user: UserInfo, request: RequestAttributes, reason: str = "") -> str:
    """kube-apiserver's 403 message (apiserver responsewriters.Forbidden + apierrors.NewForbidden).

    ``reason`` is the decision's reason; when not empty it follows the message after ``": "``.
    """
    username = _go_quote(user.username)
    if not request.is_resource_request:
        detail = f"User {username} cannot {request.verb} path {_go_quote(request.path)}"
    else:
        where = (
            f"in the namespace {_go_quote(request.namespace)}" if request.namespace else "at the cluster scope"
        )
        detail = (
            f"User {username} cannot {request.verb} resource {_go_quote(request.combined_resource)} "
            f"in API group {_go_quote(request.api_group)} {where}"
        )
    if reason:
        detail = f"{detail}: {reason}"
    if not request.is_resource_request:
        return f"forbidden: {detail}"
    resource = _group_resource(request.api_group, request.resource)
    if request.name:
        return f"{resource} {_go_quote(request.name)} is forbidden: {detail}"
    return f"{resource} is forbidden: {detail}"


def forbidden_status(user: UserInfo, request: RequestAttributes, reason: str = "") -> JsonObject:
    """The whole 403 Status body; ``details`` has name, group and kind (the plural) when set."""
    details: JsonObject = {}
    if request.is_resource_request:
        if request.name:
            details["name"] = request.name
        if request.api_group:
            details["group"] = request.api_group
        details["kind"] = request.resource
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": forbidden_message(user, request, reason),
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }


# --- Default policy


def _bootstrap_metadata(name: str) -> JsonObject:
    return {
        "name": name,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    }


def _cluster_role(name: str, rules: list[JsonObject]) -> JsonObject:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRole",
        "metadata": _bootstrap_metadata(name),
        "rules": rules,
    }


def _cluster_role_binding(name: str, groups: list[str]) -> JsonObject:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _bootstrap_metadata(name),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": KIND_CLUSTER_ROLE, "name": name},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": KIND_GROUP, "name": group} for group in groups],
    }


def bootstrap_policy() -> tuple[list[JsonObject], list[JsonObject]]:
    """kube-apiserver's default ClusterRoles and ClusterRoleBindings that every client relies on.

    A subset of upstream's bootstrappolicy: ``cluster-admin`` (bound to ``system:masters``),
    ``system:discovery`` and ``system:basic-user`` (bound to ``system:authenticated``) and
    ``system:public-info-viewer`` (also bound to ``system:unauthenticated``). Without
    ``system:discovery`` a ServiceAccount cannot even read ``/version`` or ``/apis``.
    Returns fresh objects: ``(cluster_roles, cluster_role_bindings)``.
    """
    cluster_roles = [
        _cluster_role(
            "cluster-admin",
            [
                {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                {"verbs": ["*"], "nonResourceURLs": ["*"]},
            ],
        ),
        _cluster_role(
            "system:discovery",
            [
                {
                    "verbs": ["get"],
                    "nonResourceURLs": [
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                        "/healthz",
                        "/livez",
                        "/openapi",
                        "/openapi/*",
                        "/readyz",
                        "/version",
                        "/version/",
                    ],
                }
            ],
        ),
        _cluster_role(
            "system:basic-user",
            [
                {
                    "verbs": ["create"],
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                },
                {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]},
            ],
        ),
        _cluster_role(
            "system:public-info-viewer",
            [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"]}],
        ),
    ]
    bindings = [
        _cluster_role_binding("cluster-admin", [MASTERS_GROUP]),
        _cluster_role_binding("system:discovery", [AUTHENTICATED_GROUP]),
        _cluster_role_binding("system:basic-user", [AUTHENTICATED_GROUP]),
        _cluster_role_binding("system:public-info-viewer", [AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP]),
    ]
    return cluster_roles, bindings
