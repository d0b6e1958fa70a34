"""Admission webhooks of the embedded API server, as kube-apiserver calls them.

The API server hands every write to a ``WebhookDispatcher`` twice: ``mutate`` after decoding
(mutating webhooks, serially, each seeing the previous one's result, with one re-invocation
round for ``reinvocationPolicy: IfNeeded``) and ``validate`` after schema validation
(validating webhooks, in parallel; the first error to arrive wins). Both read the stored
Mutating/ValidatingWebhookConfiguration objects through a callback, so a configuration written
through the API takes effect at the next request, as in kube-apiserver.

What follows kube-apiserver (k8s.io/apiserver/pkg/admission/plugin/webhook) closely:

- matching: rules (operations, apiGroups, apiVersions, resources with subresource forms,
  scope), namespaceSelector (the labels of the object's Namespace; a Namespace request uses
  its own labels; other cluster-scoped objects always match), objectSelector (old or new
  labels), and the exemption of the admissionregistration.k8s.io resources themselves;
- the AdmissionReview sent (admission.k8s.io/v1, or v1beta1 when a webhook lists it first),
  one fresh uid per call, and the ``?timeout=Ns`` query parameter;
- the response checks (uid echo, apiVersion/kind, patch and patchType together, no patch from
  a validating webhook), each a call failure that ``failurePolicy`` decides: Fail answers 500
  ``Internal error occurred: failed calling webhook "W": ...``, Ignore skips the webhook;
- denials (the webhook's code, 400 when missing or below 400; its reason; its message prefixed
  with ``admission webhook "W" denied the request``), dry runs to webhooks with side effects
  (400, whatever the failurePolicy), warnings (kept even when the request is refused);
- a JSON patch that does not apply is a 500 whatever the failurePolicy, as upstream.

Deliberate limits: ``matchPolicy`` is ignored (one version per resource here); matchConditions
are not CEL: only the constant expressions ``true`` and ``false`` are evaluated, anything else
is an evaluation error (403 under Fail, skipped under Ignore, as upstream treats CEL errors);
no client certificates; audit annotations are dropped.

The module also holds the v1 defaults and validation of the configuration objects, which the
API server applies when they are written.
"""

import base64
import binascii
import http.client
import json
import math
import re
import socket
import ssl
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any, Final

from danm.apistore import JsonObject, Resource, StatusError
from danm.errors import DanmError
from danm.labels import Selector, SelectorError, selector_from_structure
from danm.patch import PatchError, apply_json_patch
from danm.rbac import UserInfo

MUTATING: Final = "mutating"
VALIDATING: Final = "validating"
ADMISSION_GROUP: Final = "admissionregistration.k8s.io"
REVIEW_GROUP: Final = "admission.k8s.io"
# AdmissionReview versions this server sends, in kube-apiserver's order of preference
REVIEW_VERSIONS: Final = ("v1", "v1beta1")
DEFAULT_TIMEOUT_SECONDS: Final = 10
MIN_TIMEOUT_SECONDS: Final = 1
MAX_TIMEOUT_SECONDS: Final = 30
MAX_RESPONSE_BYTES: Final = 16 * 1024 * 1024
READ_CHUNK: Final = 65536
JSON_PATCH_TYPE: Final = "JSONPatch"

OPERATIONS: Final = ("*", "CONNECT", "CREATE", "DELETE", "UPDATE")
SCOPES: Final = ("*", "Cluster", "Namespaced")
FAILURE_POLICIES: Final = ("Fail", "Ignore")
MATCH_POLICIES: Final = ("Equivalent", "Exact")
REINVOCATION_POLICIES: Final = ("IfNeeded", "Never")
# what a v1 configuration may declare on create; Some/Unknown exist only in old objects
SIDE_EFFECTS: Final = ("None", "NoneOnDryRun")
DRY_RUN_SAFE: Final = ("None", "NoneOnDryRun")
OPTIONS_KINDS: Final = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}

_DNS_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL: Final = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN_MESSAGE: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
DNS_LABEL_MESSAGE: Final = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
URL_FORM: Final = "; desired format: https://host[/path]"

# client-go's words for an HTTP error without a Status body (NewGenericServerResponse)
_HTTP_MESSAGES: Final = {
    400: "the server rejected our request for an unknown reason",
    401: "the server has asked for the client to provide credentials",
    403: "the server does not allow access to the requested resource",
    404: "the server could not find the requested resource",
    405: "the server does not allow this method on the requested resource",
    406: "the server was unable to respond with a content type that the client supports",
    409: "the server reported a conflict",
    415: "the server was unable to respond with a content type that the client supports",
    422: "the server rejected our request due to an error in our request",
    429: "the server has received too many requests and has asked us to try again later",
    503: "the server is currently unable to handle the request",
    504: "the server was unable to return a response in the time allotted, but may still be processing the request",
}
# OpenSSL verify codes (X509_V_ERR_*) with Go's x509 wording
_X509_HOSTNAME_MISMATCH: Final = 62
_X509_IP_MISMATCH: Final = 64
_X509_EXPIRED: Final = (9, 10)


ADMIN: Final = UserInfo("admin", ["system:masters", "system:authenticated"])


class AdmissionAttributes:
    """One request under admission.

    ``obj`` is the object being written (None for DELETE); ``mutate`` replaces it with the
    mutated object. ``warnings`` collects the webhooks' warnings, in arrival order without
    duplicates, and keeps them when a webhook refuses the request (kube-apiserver still sends
    them as ``Warning`` headers with the error). For a Namespace, ``namespace`` is the
    Namespace's own name, as kube-apiserver sets it; otherwise it is "" for cluster-scoped
    resources.
    """

    def __init__(
        self,
        operation: str,
        resource: Resource,
        namespace: str,
        name: str,
        obj: JsonObject | None,
        old_obj: JsonObject | None = None,
        subresource: str = "",
        dry_run: bool = False,
        user: UserInfo | None = None,
        options: JsonObject | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        self.operation = operation
        self.resource = resource
        self.namespace = namespace
        self.name = name
        self.obj = obj
        self.old_obj = old_obj
        self.subresource = subresource
        self.dry_run = dry_run
        self.user = user if user is not None else ADMIN
        self.options = options if options is not None else default_options(operation, dry_run)
        self.warnings = warnings if warnings is not None else []
        self._lock = threading.Lock()

    def add_warning(self, text: str) -> None:
        if not text:
            return
        with self._lock:
            if text not in self.warnings:
                self.warnings.append(text)


def default_options(operation: str, dry_run: bool) -> JsonObject | None:
    """The meta.k8s.io/v1 Create/Update/DeleteOptions kube-apiserver puts in ``request.options``."""
    kind = OPTIONS_KINDS.get(operation)
    if kind is None:
        return None
    options: JsonObject = {"kind": kind, "apiVersion": "meta.k8s.io/v1"}
    if dry_run:
        options["dryRun"] = ["All"]
    return options


def warning_header(text: str) -> str:
    """The value of a ``Warning`` header for a webhook warning: ``299 - "text"``.

    Quotes and backslashes are escaped as Go's ``NewWarningHeader`` does, line breaks become
    spaces as Go's header writer does, and the UTF-8 bytes are carried in a latin-1 string, so
    ``http.server``'s ``send_header`` (which encodes latin-1) writes them unchanged.
    """
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")
    return f'299 - "{escaped}"'.encode("utf-8").decode("latin-1")


# --- Errors


class WebhookCallError(DanmError):
    """A failed call (kube's ErrCallingWebhook): failurePolicy decides whether it refuses."""

    def __init__(self, webhook: str, reason: str) -> None:
        super().__init__(f"failed calling webhook {_quote(webhook)}: {reason}")
        self.webhook = webhook
        self.reason = reason

    def status_error(self) -> StatusError:
        return internal_error(f"failed calling webhook {_quote(self.webhook)}: {self.reason}")


def internal_error(text: str) -> StatusError:
    """apierrors.NewInternalError: 500 with the text as the single cause."""
    return StatusError(
        500, "InternalError", f"Internal error occurred: {text}", {"causes": [{"message": text}]}
    )


def denial(webhook: str, result: JsonObject | None) -> StatusError:
    """A webhook's refusal as the client sees it (kube's webhookerrors.ToStatusErr)."""
    status = result if result is not None else {}
    code = status.get("code")
    number = code if isinstance(code, int) and not isinstance(code, bool) else 0
    if number < 400:
        number = 400
    elif number > 599:  # not a status line http.server (or a client) accepts
        number = 500
    message = status.get("message")
    reason = status.get("reason")
    text = message if isinstance(message, str) else ""
    why = reason if isinstance(reason, str) else ""
    denied = f"admission webhook {_quote(webhook)} denied the request"
    if text:
        full = f"{denied}: {text}"
    elif why:
        full = f"{denied}: {why}"
    else:
        full = f"{denied} without explanation"
    details = status.get("details")
    return StatusError(number, why, full, dict(details) if isinstance(details, dict) else {})


def _quote(text: str) -> str:
    """Go's %q for the plain strings of names and URLs."""
    return json.dumps(text, ensure_ascii=False)


# --- Configuration objects: v1 defaults and validation


def configuration_defaults(obj: JsonObject, mutating: bool) -> JsonObject:
    """The admissionregistration.k8s.io/v1 defaults of a webhook configuration (a new dict)."""
    hooks = obj.get("webhooks")
    if not isinstance(hooks, list):
        return obj
    defaulted: list[Any] = []
    for hook in hooks:
        if not isinstance(hook, dict):
            defaulted.append(hook)
            continue
        hook = dict(hook)
        hook.setdefault("failurePolicy", "Fail")
        hook.setdefault("matchPolicy", "Equivalent")
        hook.setdefault("namespaceSelector", {})
        hook.setdefault("objectSelector", {})
        hook.setdefault("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS)
        if mutating:
            hook.setdefault("reinvocationPolicy", "Never")
        rules = hook.get("rules")
        if isinstance(rules, list):
            hook["rules"] = [
                dict(rule, scope=rule.get("scope") or "*") if isinstance(rule, dict) else rule
                for rule in rules
            ]
        client_config = hook.get("clientConfig")
        if isinstance(client_config, dict) and isinstance(client_config.get("service"), dict):
            service = dict(client_config["service"])
            service.setdefault("port", 443)
            hook["clientConfig"] = dict(client_config, service=service)
        defaulted.append(hook)
    return dict(obj, webhooks=defaulted)


def configuration_causes(obj: JsonObject, mutating: bool, allow_http: bool = False) -> list[JsonObject]:
    """Why kube-apiserver would refuse this (defaulted) configuration: 422 causes, or none.

    ``allow_http`` accepts ``http://`` URLs, which kube-apiserver refuses; this server can call
    them, which trials and tests find convenient.
    """
    causes: list[JsonObject] = []
    hooks = obj.get("webhooks")
    if hooks is None:
        return causes
    if not isinstance(hooks, list):
        return [_invalid_type("webhooks", "array")]
    names: set[str] = set()
    for index, hook in enumerate(hooks):
        path = f"webhooks[{index}]"
        if not isinstance(hook, dict):
            causes.append(_invalid_type(path, "object"))
            continue
        name = hook.get("name")
        if isinstance(name, str) and name in names:
            causes.append(_cause(f"{path}.name", "FieldValueDuplicate", f"Duplicate value: {_quote(name)}"))
        elif isinstance(name, str):
            names.add(name)
        causes.extend(_webhook_causes(hook, path, mutating, allow_http))
    return causes


def _webhook_causes(hook: JsonObject, path: str, mutating: bool, allow_http: bool) -> list[JsonObject]:
    causes: list[JsonObject] = []
    name = hook.get("name")
    if not isinstance(name, str) or not name:
        causes.append(_required(f"{path}.name", ""))
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        causes.append(_invalid(f"{path}.name", _quote(name), DNS_SUBDOMAIN_MESSAGE))
    elif len(name.split(".")) < 3:
        causes.append(
            _invalid(
                f"{path}.name",
                _quote(name),
                "should be a domain with at least three segments separated by dots",
            )
        )
    rules = hook.get("rules") or []
    if not isinstance(rules, list):
        causes.append(_invalid_type(f"{path}.rules", "array"))
        rules = []
    for number, rule in enumerate(rules):
        if isinstance(rule, dict):
            causes.extend(_rule_causes(rule, f"{path}.rules[{number}]"))
        else:
            causes.append(_invalid_type(f"{path}.rules[{number}]", "object"))
    causes.extend(_choice(hook, "failurePolicy", FAILURE_POLICIES, path))
    causes.extend(_choice(hook, "matchPolicy", MATCH_POLICIES, path))
    if mutating:
        causes.extend(_choice(hook, "reinvocationPolicy", REINVOCATION_POLICIES, path))
    if hook.get("sideEffects") is None:
        causes.append(_required(f"{path}.sideEffects", "must specify one of " + ", ".join(SIDE_EFFECTS)))
    else:
        causes.extend(_choice(hook, "sideEffects", SIDE_EFFECTS, path))
    timeout = hook.get("timeoutSeconds")
    if timeout is not None and (
        not _is_int(timeout) or not MIN_TIMEOUT_SECONDS <= timeout <= MAX_TIMEOUT_SECONDS
    ):
        causes.append(
            _invalid(
                f"{path}.timeoutSeconds", str(timeout), "the timeout value must be between 1 and 30 seconds"
            )
        )
    for key in ("namespaceSelector", "objectSelector"):
        _, error = parse_selector(hook.get(key))
        if error:
            causes.append(_invalid(f"{path}.{key}", "", error))
    causes.extend(
        _review_version_causes(hook.get("admissionReviewVersions"), f"{path}.admissionReviewVersions")
    )
    causes.extend(_client_config_causes(hook.get("clientConfig"), f"{path}.clientConfig", allow_http))
    conditions = hook.get("matchConditions") or []
    seen: set[str] = set()
    for number, condition in enumerate(conditions if isinstance(conditions, list) else []):
        where = f"{path}.matchConditions[{number}]"
        condition_name = condition.get("name") if isinstance(condition, dict) else None
        expression = condition.get("expression") if isinstance(condition, dict) else None
        if not isinstance(condition_name, str) or not condition_name:
            causes.append(_required(f"{where}.name", ""))
        elif condition_name in seen:
            causes.append(
                _cause(f"{where}.name", "FieldValueDuplicate", f"Duplicate value: {_quote(condition_name)}")
            )
        else:
            seen.add(condition_name)
        if not isinstance(expression, str) or not expression.strip():
            causes.append(_required(f"{where}.expression", ""))
    return causes


def _rule_causes(rule: JsonObject, path: str) -> list[JsonObject]:
    causes: list[JsonObject] = []
    operations = _strings(rule.get("operations"))
    if not operations:
        causes.append(_required(f"{path}.operations", ""))
    if len(operations) > 1 and "*" in operations:
        causes.append(
            _invalid(
                f"{path}.operations",
                _go_strings(operations),
                "if '*' is present, must not specify other operations",
            )
        )
    for number, operation in enumerate(operations):
        if operation not in OPERATIONS:
            causes.append(_not_supported(f"{path}.operations[{number}]", operation, OPERATIONS))
    for key, noun in (("apiGroups", "API groups"), ("apiVersions", "API versions")):
        values = _strings(rule.get(key))
        if not values:
            causes.append(_required(f"{path}.{key}", ""))
        if len(values) > 1 and "*" in values:
            causes.append(
                _invalid(
                    f"{path}.{key}", _go_strings(values), f"if '*' is present, must not specify other {noun}"
                )
            )
    for number, version in enumerate(_strings(rule.get("apiVersions"))):
        if not version:
            causes.append(_required(f"{path}.apiVersions[{number}]", ""))
    causes.extend(_resource_causes(_strings(rule.get("resources")), f"{path}.resources"))
    scope = rule.get("scope")
    if scope is not None and scope not in SCOPES:
        causes.append(_not_supported(f"{path}.scope", str(scope), SCOPES))
    return causes


def _resource_causes(resources: list[str], path: str) -> list[JsonObject]:
    causes: list[JsonObject] = []
    if not resources:
        causes.append(_required(path, ""))
    wildcard_subresources: set[str] = set()  # x/*
    wildcard_resources: set[str] = set()  # */x
    double_wildcard = "*/*" in resources
    single_wildcard = "*" in resources
    plain_resource = False
    for number, entry in enumerate(resources):
        if not entry:
            causes.append(_required(f"{path}[{number}]", ""))
            continue
        resource, slash, subresource = entry.partition("/")
        if not slash:
            plain_resource = entry != "*"
            continue
        if resource in wildcard_subresources:
            causes.append(
                _invalid(
                    f"{path}[{number}]",
                    _quote(entry),
                    f"if '{resource}/*' is present, must not specify {entry}",
                )
            )
        if subresource in wildcard_resources:
            causes.append(
                _invalid(
                    f"{path}[{number}]",
                    _quote(entry),
                    f"if '*/{subresource}' is present, must not specify {entry}",
                )
            )
        if subresource == "*":
            wildcard_subresources.add(resource)
        if resource == "*":
            wildcard_resources.add(subresource)
    if len(resources) > 1 and double_wildcard:
        causes.append(
            _invalid(path, _go_strings(resources), "if '*/*' is present, must not specify other resources")
        )
    if single_wildcard and plain_resource:
        causes.append(
            _invalid(
                path,
                _go_strings(resources),
                "if '*' is present, must not specify other resources without subresources",
            )
        )
    return causes


def _review_version_causes(versions: Any, path: str) -> list[JsonObject]:
    wanted = ", ".join(REVIEW_VERSIONS)
    listed = _strings(versions)
    if not listed:
        return [_required(path, f"must specify one of {wanted}")]
    causes: list[JsonObject] = []
    seen: set[str] = set()
    for number, version in enumerate(listed):
        if version in seen:
            causes.append(_invalid(f"{path}[{number}]", _quote(version), "duplicate version"))
            continue
        seen.add(version)
        if len(version) > 63 or not _DNS_LABEL.match(version):
            causes.append(_invalid(f"{path}[{number}]", _quote(version), DNS_LABEL_MESSAGE))
    if not any(version in REVIEW_VERSIONS for version in listed):
        causes.append(_invalid(path, _go_strings(listed), f"must include at least one of {wanted}"))
    return causes


def _client_config_causes(client_config: Any, path: str, allow_http: bool) -> list[JsonObject]:
    config = client_config if isinstance(client_config, dict) else {}
    url = config.get("url")
    service = config.get("service")
    if (url is None) == (service is None):
        return [_required(path, "exactly one of url or service is required")]
    causes: list[JsonObject] = []
    if url is not None:
        where = f"{path}.url"
        if not isinstance(url, str):
            return [_invalid_type(where, "string")]
        try:
            parts = urllib.parse.urlsplit(url)
            parts.port  # raises ValueError on a bad port
        except ValueError as error:
            return [_required(where, f"url must be a valid URL: {error}{URL_FORM}")]
        schemes = ("https", "http") if allow_http else ("https",)
        if parts.scheme not in schemes:
            causes.append(
                _invalid(where, _quote(parts.scheme), "'https' is the only allowed URL scheme" + URL_FORM)
            )
        if not parts.netloc.rpartition("@")[2]:
            causes.append(_invalid(where, '""', "host must be specified" + URL_FORM))
        if "@" in parts.netloc:
            causes.append(
                _invalid(
                    where,
                    _quote(parts.netloc.rpartition("@")[0]),
                    "user information is not permitted in the URL",
                )
            )
        if parts.fragment:
            causes.append(_invalid(where, _quote(parts.fragment), "fragments are not permitted in the URL"))
        if parts.query:
            causes.append(
                _invalid(where, _quote(parts.query), "query parameters are not permitted in the URL")
            )
        return causes
    where = f"{path}.service"
    if not isinstance(service, dict):
        return [_invalid_type(where, "object")]
    if not service.get("name"):
        causes.append(_required(f"{where}.name", "service name is required"))
    if not service.get("namespace"):
        causes.append(_required(f"{where}.namespace", "service namespace is required"))
    port = service.get("port", 443)
    if not _is_int(port) or not 1 <= port <= 65535:
        causes.append(
            _invalid(f"{where}.port", str(port), "port is not valid: must be between 1 and 65535, inclusive")
        )
    service_path = service.get("path")
    if isinstance(service_path, str) and service_path not in ("", "/"):
        causes.extend(_service_path_causes(service_path, f"{where}.path"))
    return causes


def _service_path_causes(path_value: str, where: str) -> list[JsonObject]:
    shown = _quote(path_value)
    if path_value == "//":
        return [_invalid(where, shown, "segment[0] may not be empty")]
    causes: list[JsonObject] = []
    if not path_value.startswith("/"):
        causes.append(_invalid(where, shown, "must start with a '/'"))
    steps = path_value[1:]
    if steps.endswith("/"):
        steps = steps[:-1]
    for number, step in enumerate(steps.split("/")):
        if not step:
            causes.append(_invalid(where, shown, f"segment[{number}] may not be empty"))
        elif len(step) > 253 or not _DNS_SUBDOMAIN.match(step):
            causes.append(_invalid(where, shown, f"segment[{number}]: {DNS_SUBDOMAIN_MESSAGE}"))
    return causes


def _choice(hook: JsonObject, key: str, allowed: tuple[str, ...], path: str) -> list[JsonObject]:
    value = hook.get(key)
    if value is None or value in allowed:
        return []
    return [_not_supported(f"{path}.{key}", str(value), allowed)]


def _cause(field: str, reason: str, message: str) -> JsonObject:
    return {"field": field, "reason": reason, "message": message}


def _required(field: str, detail: str) -> JsonObject:
    return _cause(field, "FieldValueRequired", f"Required value: {detail}" if detail else "Required value")


def _invalid(field: str, shown: str, detail: str) -> JsonObject:
    return _cause(field, "FieldValueInvalid", f"Invalid value: {shown}: {detail}")


def _invalid_type(field: str, expected: str) -> JsonObject:
    return _cause(field, "FieldValueTypeInvalid", f"Invalid value: must be of type {expected}")


def _not_supported(field: str, value: str, allowed: tuple[str, ...]) -> JsonObject:
    supported = ", ".join(_quote(item) for item in allowed)
    return _cause(
        field, "FieldValueNotSupported", f"Unsupported value: {_quote(value)}: supported values: {supported}"
    )


def _go_strings(values: list[str]) -> str:
    """Go's %#v of a []string, as kube prints a bad list value."""
    return "[]string{" + ", ".join(_quote(value) for value in values) + "}"


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- Matching


def parse_selector(value: Any) -> tuple[Selector | None, str]:
    """A namespaceSelector/objectSelector; absent means everything. (None, why) when invalid."""
    if value is None:
        return Selector([]), ""
    if not isinstance(value, dict):
        return None, "must be a label selector object"
    match_labels = value.get("matchLabels")
    expressions = value.get("matchExpressions")
    if match_labels is not None and not (
        isinstance(match_labels, dict) and all(isinstance(item, str) for item in match_labels.values())
    ):
        return None, "matchLabels must map strings to strings"
    if expressions is not None and not (
        isinstance(expressions, list) and all(isinstance(item, dict) for item in expressions)
    ):
        return None, "matchExpressions must be a list of objects"
    try:
        return selector_from_structure(match_labels, expressions), ""
    except SelectorError as error:
        return None, str(error)


def is_exempt(resource: Resource) -> bool:
    """Webhook (and admission policy) configurations are never sent to webhooks."""
    return resource.group == ADMISSION_GROUP


def _is_namespace(resource: Resource) -> bool:
    return resource.group == "" and resource.plural == "namespaces"


def rule_matches(rule: JsonObject, attributes: AdmissionAttributes) -> bool:
    """kube's rules.Matcher: scope, operation, group, version and resource/subresource."""
    resource = attributes.resource
    scope = rule.get("scope") or "*"
    if scope == "Namespaced":
        if _is_namespace(resource) or not attributes.namespace:
            return False
    elif scope == "Cluster":
        if not (_is_namespace(resource) or not attributes.namespace):
            return False
    elif scope != "*":
        return False
    if not _exact_or_wildcard(rule.get("operations"), attributes.operation):
        return False
    if not _exact_or_wildcard(rule.get("apiGroups"), resource.group):
        return False
    if not _exact_or_wildcard(rule.get("apiVersions"), resource.version):
        return False
    entries = rule.get("resources")
    if not isinstance(entries, list):
        return False
    for entry in entries:
        if not isinstance(entry, str):
            continue
        name, _, subresource = entry.partition("/")
        if (name == "*" or name == resource.plural) and (
            subresource == "*" or subresource == attributes.subresource
        ):
            return True
    return False


def _exact_or_wildcard(items: Any, requested: str) -> bool:
    if not isinstance(items, list):
        return False
    for item in items:
        if item == "*" or item == requested:
            return True
    return False


def _labels(obj: JsonObject | None) -> dict[str, str] | None:
    if obj is None:
        return None
    metadata = obj.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    return labels if isinstance(labels, dict) else {}


class Webhook:
    """One webhook of a stored configuration, parsed once per configuration version."""

    def __init__(
        self, configuration: str, index: int, spec: JsonObject, mutating: bool, default_timeout: float
    ) -> None:
        self.configuration = configuration
        self.index = index
        name = spec.get("name")
        self.name = name if isinstance(name, str) else ""
        # kube's webhook accessor uid: unique per configuration and position
        self.uid = f"{configuration}/{self.name}/{index}"
        self.mutating = mutating
        rules = spec.get("rules")
        self.rules: list[JsonObject] = (
            [rule for rule in rules if isinstance(rule, dict)] if isinstance(rules, list) else []
        )
        self.ignore = spec.get("failurePolicy") == "Ignore"
        side_effects = spec.get("sideEffects")
        self.side_effects = side_effects if isinstance(side_effects, str) else ""
        timeout = spec.get("timeoutSeconds")
        if isinstance(timeout, int) and not isinstance(timeout, bool):
            self.timeout = float(min(max(timeout, MIN_TIMEOUT_SECONDS), MAX_TIMEOUT_SECONDS))
        else:
            self.timeout = default_timeout
        self.review_versions = _strings(spec.get("admissionReviewVersions"))
        self.reinvoke = mutating and spec.get("reinvocationPolicy") == "IfNeeded"
        client_config = spec.get("clientConfig")
        self.client_config: JsonObject = client_config if isinstance(client_config, dict) else {}
        self.namespace_selector, self.namespace_selector_error = parse_selector(spec.get("namespaceSelector"))
        self.object_selector, self.object_selector_error = parse_selector(spec.get("objectSelector"))
        conditions = spec.get("matchConditions")
        self.match_conditions: list[JsonObject] = (
            [condition for condition in conditions if isinstance(condition, dict)]
            if isinstance(conditions, list)
            else []
        )


def parse_configuration(obj: JsonObject, mutating: bool, default_timeout: float) -> list[Webhook]:
    metadata = obj.get("metadata")
    name = metadata.get("name", "") if isinstance(metadata, dict) else ""
    hooks = obj.get("webhooks")
    if not isinstance(hooks, list):
        return []
    parsed: list[Webhook] = []
    for index, spec in enumerate(hooks):
        if isinstance(spec, dict):
            parsed.append(Webhook(str(name), index, spec, mutating, default_timeout))
    return parsed


# --- The AdmissionReview


def review_request(attributes: AdmissionAttributes, uid: str, version: str) -> JsonObject:
    """The AdmissionReview kube-apiserver posts; omitempty fields are left out when empty."""
    resource = attributes.resource
    kind = {"group": resource.group, "version": resource.version, "kind": resource.kind}
    gvr = {"group": resource.group, "version": resource.version, "resource": resource.plural}
    request: JsonObject = {"uid": uid, "kind": kind, "resource": gvr}
    if attributes.subresource:
        request["subResource"] = attributes.subresource
    request["requestKind"] = dict(kind)
    request["requestResource"] = dict(gvr)
    if attributes.subresource:
        request["requestSubResource"] = attributes.subresource
    if attributes.name:
        request["name"] = attributes.name
    if attributes.namespace:
        request["namespace"] = attributes.namespace
    request["operation"] = attributes.operation
    request["userInfo"] = attributes.user.to_json()
    request["object"] = attributes.obj
    request["oldObject"] = attributes.old_obj
    request["dryRun"] = attributes.dry_run
    request["options"] = attributes.options
    return {"apiVersion": f"{REVIEW_GROUP}/{version}", "kind": "AdmissionReview", "request": request}


class WebhookResponse:
    """A verified ``response`` stanza; ``patch`` is the decoded JSON patch document."""

    def __init__(
        self, allowed: bool, patch: bytes, patch_type: str, result: JsonObject | None, warnings: list[str]
    ) -> None:
        self.allowed = allowed
        self.patch = patch
        self.patch_type = patch_type
        self.result = result
        self.warnings = warnings


def decode_review(webhook: str, body: bytes, uid: str, version: str, mutating: bool) -> WebhookResponse:
    """Decode and verify a webhook's reply (kube's VerifyAdmissionResponse).

    Raises WebhookCallError: ``failed to call webhook: ...`` when the body does not decode as
    an AdmissionReview, ``received invalid webhook response: ...`` when it breaks the rules.
    """
    try:
        review = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise WebhookCallError(
            webhook, f"failed to call webhook: couldn't get version/kind; json parse error: {error}"
        ) from None
    if not isinstance(review, dict):
        raise WebhookCallError(webhook, "failed to call webhook: the body is not a JSON object")
    response = review.get("response")
    if response is None:
        raise WebhookCallError(webhook, "received invalid webhook response: webhook response was absent")
    if not isinstance(response, dict):
        raise _undecodable(webhook, "response", "an object")
    allowed = response.get("allowed", False)
    if not isinstance(allowed, bool):
        raise _undecodable(webhook, "response.allowed", "a boolean")
    result = response.get("status")
    if result is not None and not isinstance(result, dict):
        raise _undecodable(webhook, "response.status", "an object")
    warnings = response.get("warnings")
    if warnings is not None and not (
        isinstance(warnings, list) and all(isinstance(item, str) for item in warnings)
    ):
        raise _undecodable(webhook, "response.warnings", "a list of strings")
    encoded = response.get("patch")
    if encoded is not None and not isinstance(encoded, str):
        raise _undecodable(webhook, "response.patch", "a base64 string")
    try:
        patch = base64.b64decode(encoded or "", validate=True)
    except (binascii.Error, ValueError) as base64_error:
        raise WebhookCallError(
            webhook, f"failed to call webhook: illegal base64 data in response.patch: {base64_error}"
        ) from None
    patch_type = response.get("patchType")
    if patch_type is not None and not isinstance(patch_type, str):
        raise _undecodable(webhook, "response.patchType", "a string")
    kind_of_patch = patch_type or ""
    if version == "v1":
        echoed = response.get("uid")
        if echoed != uid:
            shown = echoed if isinstance(echoed, str) else ""
            raise _invalid_response(webhook, f"expected response.uid={_quote(uid)}, got {_quote(shown)}")
        api_version = review.get("apiVersion")
        kind = review.get("kind")
        if api_version != f"{REVIEW_GROUP}/v1" or kind != "AdmissionReview":
            group, _, got_version = (api_version if isinstance(api_version, str) else "").rpartition("/")
            got_kind = kind if isinstance(kind, str) else ""
            raise _invalid_response(
                webhook,
                f"expected webhook response of {REVIEW_GROUP}/v1, Kind=AdmissionReview, got {group}/{got_version}, Kind={got_kind}",
            )
        if mutating and patch and not kind_of_patch:
            raise _invalid_response(webhook, "webhook returned response.patch but not response.patchType")
        if mutating and not patch and kind_of_patch:
            raise _invalid_response(webhook, "webhook returned response.patchType but not response.patch")
    if not mutating and patch:
        raise _invalid_response(webhook, "validating webhook may not return response.patch")
    if not mutating and kind_of_patch:
        raise _invalid_response(webhook, "validating webhook may not return response.patchType")
    return WebhookResponse(
        allowed, patch, kind_of_patch, result, list(warnings) if warnings is not None else []
    )


def _undecodable(webhook: str, field: str, expected: str) -> WebhookCallError:
    return WebhookCallError(
        webhook, f"failed to call webhook: cannot decode the AdmissionReview: {field} must be {expected}"
    )


def _invalid_response(webhook: str, detail: str) -> WebhookCallError:
    return WebhookCallError(webhook, f"received invalid webhook response: {detail}")


def apply_patch(webhook: str, obj: JsonObject | None, response: WebhookResponse) -> JsonObject | None:
    """The object after the webhook's patch, or None when the webhook sent no patch."""
    if not response.patch:
        return None
    try:
        operations = json.loads(response.patch)
    except (ValueError, UnicodeDecodeError) as decode_error:
        raise WebhookCallError(
            webhook, f"received undecodable patch in webhook response: {decode_error}"
        ) from None
    if not isinstance(operations, list):
        raise WebhookCallError(
            webhook, "received undecodable patch in webhook response: a JSON patch must be an array"
        )
    if not operations:
        return None
    if obj is None:
        raise internal_error(
            f"admission webhook {_quote(webhook)} attempted to modify the object, which is not supported for this operation"
        )
    if response.patch_type != JSON_PATCH_TYPE:
        raise WebhookCallError(webhook, f"unsupported patch type {_quote(response.patch_type)}")
    try:
        patched = apply_json_patch(obj, operations)
    except PatchError as patch_error:
        raise internal_error(str(patch_error)) from None
    if not isinstance(patched, dict):
        raise internal_error(f"admission webhook {_quote(webhook)} patched the object into a non-object")
    return patched


# --- Calling a webhook


class Endpoint:
    """Where and how to post: the URL kube would show, the address, the TLS server name."""

    def __init__(
        self,
        url: str,
        tls: bool,
        host: str,
        port: int,
        host_header: str,
        path: str,
        server_name: str,
        service_namespace: str = "",
        service_name: str = "",
    ) -> None:
        self.url = url
        self.tls = tls
        self.host = host
        self.port = port
        self.host_header = host_header
        self.path = path
        self.server_name = server_name
        self.service_namespace = service_namespace
        self.service_name = service_name


def endpoint_of(webhook: Webhook) -> Endpoint:
    """The endpoint of a webhook's clientConfig; WebhookCallError when it has none."""
    config = webhook.client_config
    query = f"timeout={math.ceil(webhook.timeout)}s"
    url = config.get("url")
    service = config.get("service")
    if isinstance(url, str) and url:
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise WebhookCallError(webhook.name, f"could not get REST client: {error}") from None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise WebhookCallError(
                webhook.name, f"could not get REST client: unsupported webhook URL {_quote(url)}"
            )
        tls = parts.scheme == "https"
        host = parts.hostname
        netloc = parts.netloc.rpartition("@")[2]
        path = (parts.path or "/") + "?" + (parts.query + "&" if parts.query else "") + query
        return Endpoint(
            f"{parts.scheme}://{netloc}{path}", tls, host, port or (443 if tls else 80), netloc, path, host
        )
    if isinstance(service, dict):
        namespace = service.get("namespace")
        name = service.get("name")
        port_value = service.get("port", 443)
        if (
            not isinstance(namespace, str)
            or not isinstance(name, str)
            or not namespace
            or not name
            or not _is_int(port_value)
        ):
            raise WebhookCallError(webhook.name, "could not get REST client: invalid service reference")
        service_path = service.get("path")
        path = (service_path if isinstance(service_path, str) and service_path else "/") + "?" + query
        host = f"{name}.{namespace}.svc"
        netloc = f"{host}:{port_value}"
        return Endpoint(
            f"https://{netloc}{path}", True, host, int(port_value), netloc, path, host, namespace, name
        )
    raise WebhookCallError(
        webhook.name, "could not get REST client: the webhook has neither a url nor a service"
    )


def review_version(versions: list[str]) -> str:
    """The first AdmissionReview version the webhook accepts that this server speaks, or ""."""
    for version in versions:
        if version in REVIEW_VERSIONS:
            return version
    return ""


def http_error(status: int, body: bytes) -> str:
    """client-go's error for a non-2xx reply: the Status body's message, or generic words."""
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        decoded = None
    if isinstance(decoded, dict) and decoded.get("kind") == "Status":
        message = decoded.get("message")
        if isinstance(message, str) and message:
            return message
    known = _HTTP_MESSAGES.get(status)
    if known is not None:
        return known
    if status >= 500:
        text = body[:1024].decode("utf-8", "replace").strip()
        return f"an error on the server ({_quote(text)}) has prevented the request from succeeding"
    return f"the server responded with the status code {status} but did not return more information"


def transport_error(error: BaseException, endpoint: Endpoint, address: str) -> str:
    """A socket, TLS or HTTP failure in the words of Go's net/http client."""
    if isinstance(error, TimeoutError):
        return "context deadline exceeded"
    if isinstance(error, ssl.SSLCertVerificationError):
        code = error.verify_code
        if code == _X509_HOSTNAME_MISMATCH or code == _X509_IP_MISMATCH:
            detail = f"certificate is not valid for {endpoint.server_name}"
        elif code in _X509_EXPIRED:
            detail = "certificate has expired or is not yet valid"
        elif error.verify_message:
            detail = f"certificate signed by unknown authority ({error.verify_message})"
        else:
            detail = "certificate signed by unknown authority"
        return f"tls: failed to verify certificate: x509: {detail}"
    if isinstance(error, ssl.SSLError):
        if error.reason == "WRONG_VERSION_NUMBER":
            return "http: server gave HTTP response to HTTPS client"
        return f"remote error: tls: {error.reason or error}"
    if isinstance(error, http.client.RemoteDisconnected):
        return "EOF"
    if isinstance(error, ConnectionRefusedError):
        return f"dial tcp {address}: connect: connection refused"
    if isinstance(error, socket.gaierror):
        return f"dial tcp: lookup {endpoint.host}: no such host"
    if isinstance(error, ConnectionResetError):
        return "read: connection reset by peer"
    if isinstance(error, OSError):
        return f"dial tcp {address}: {error.strerror or error}"
    return str(error) or type(error).__name__


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline exceeded")
    return left


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Outcome:
    """The errors of parallel validating webhooks, in the order they arrive."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.errors: list[StatusError] = []

    def add(self, error: StatusError) -> None:
        with self.lock:
            self.errors.append(error)


class WebhookDispatcher:
    """Runs the stored webhook configurations against requests.

    ``configurations(MUTATING | VALIDATING)`` returns the stored configuration objects;
    ``namespace_labels(name)`` the labels of a Namespace, or None when it does not exist;
    ``resolve_service(namespace, name, port)`` the (host, port) that reaches a service
    reference (without it, ``name.namespace.svc`` is looked up in DNS); it may raise to say the
    service cannot be reached. ``default_timeout`` applies to webhooks without a valid
    ``timeoutSeconds``.
    """

    def __init__(
        self,
        configurations: Callable[[str], list[JsonObject]],
        namespace_labels: Callable[[str], dict[str, str] | None],
        resolve_service: Callable[[str, str, int], tuple[str, int]] | None = None,
        default_timeout: float = float(DEFAULT_TIMEOUT_SECONDS),
    ) -> None:
        self.configurations = configurations
        self.namespace_labels = namespace_labels
        self.resolve_service = resolve_service
        self.default_timeout = default_timeout
        self._lock = threading.Lock()
        self._parsed: dict[str, dict[tuple[str, str, str], list[Webhook]]] = {MUTATING: {}, VALIDATING: {}}
        self._tls: dict[str, ssl.SSLContext] = {}

    # -- the two phases

    def mutate(self, attributes: AdmissionAttributes) -> JsonObject | None:
        """Run the mutating webhooks; returns (and stores in ``attributes.obj``) the result.

        Raises StatusError when a webhook refuses the request or fails under failurePolicy Fail.
        """
        if is_exempt(attributes.resource):
            return attributes.obj
        hooks = self.webhooks(MUTATING)
        previously_invoked: list[str] = []  # IfNeeded webhooks called since the last change
        reinvoke: set[str] = set()
        changed_any = False
        for hook in hooks:
            if not self.should_call(hook, attributes):
                continue
            changed = self._mutate_with(hook, attributes)
            if changed:
                reinvoke.update(previously_invoked)
                previously_invoked = []
                changed_any = True
            if hook.reinvoke:
                previously_invoked.append(hook.uid)
        if changed_any and reinvoke:
            # the one re-invocation round: only IfNeeded webhooks that ran before a later change
            for hook in hooks:
                if hook.uid in reinvoke and self.should_call(hook, attributes):
                    self._mutate_with(hook, attributes)
        return attributes.obj

    def validate(self, attributes: AdmissionAttributes) -> None:
        """Run the validating webhooks in parallel; raises the first error to arrive."""
        if is_exempt(attributes.resource):
            return
        selected = [hook for hook in self.webhooks(VALIDATING) if self.should_call(hook, attributes)]
        if not selected:
            return
        outcome = _Outcome()
        if len(selected) == 1:
            self._validate_with(selected[0], attributes, outcome)
        else:
            threads = [
                threading.Thread(
                    target=self._validate_with,
                    args=(hook, attributes, outcome),
                    name=f"webhook {hook.name}",
                    daemon=True,
                )
                for hook in selected
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if outcome.errors:
            raise outcome.errors[0]

    def _mutate_with(self, hook: Webhook, attributes: AdmissionAttributes) -> bool:
        """Call one mutating webhook and apply its patch; True when the object changed."""
        try:
            response = self.call(hook, attributes)
            patched = apply_patch(hook.name, attributes.obj, response)
        except WebhookCallError as failure:
            if hook.ignore:
                return False
            raise failure.status_error() from None
        if patched is None:
            return False
        changed = patched != attributes.obj
        attributes.obj = patched
        return changed

    def _validate_with(self, hook: Webhook, attributes: AdmissionAttributes, outcome: _Outcome) -> None:
        # distinct except names: mypyc types an except variable once per function
        try:
            self.call(hook, attributes)
        except WebhookCallError as failure:
            if not hook.ignore:
                outcome.add(failure.status_error())
        except StatusError as refusal:
            outcome.add(refusal)
        except Exception as crash:  # a worker thread must not swallow a bug
            outcome.add(StatusError(500, "InternalError", f"Internal error occurred: {crash!r}"))

    # -- configurations and matching

    def webhooks(self, kind: str) -> list[Webhook]:
        """The webhooks of every stored configuration of a kind, by configuration name then position."""
        objects = sorted(self.configurations(kind), key=_configuration_name)
        mutating = kind == MUTATING
        hooks: list[Webhook] = []
        fresh: dict[tuple[str, str, str], list[Webhook]] = {}
        with self._lock:
            cache = self._parsed[kind]
            for obj in objects:
                metadata = obj.get("metadata")
                uid = str(metadata.get("uid", "")) if isinstance(metadata, dict) else ""
                revision = str(metadata.get("resourceVersion", "")) if isinstance(metadata, dict) else ""
                key = (_configuration_name(obj), uid, revision)
                parsed = cache.get(key) if uid and revision else None
                if parsed is None:
                    parsed = parse_configuration(obj, mutating, self.default_timeout)
                if uid and revision:
                    fresh[key] = parsed
                hooks.extend(parsed)
            self._parsed[kind] = fresh
        return hooks

    def should_call(self, hook: Webhook, attributes: AdmissionAttributes) -> bool:
        """kube's ShouldCallHook: selectors, then rules; selector errors count only on a rule match."""
        namespace_match, namespace_error = self._namespace_matches(hook, attributes)
        if not namespace_match and namespace_error is None:
            return False
        object_match, object_error = _object_matches(hook, attributes)
        if not object_match and object_error is None:
            return False
        matched = False
        for rule in hook.rules:
            if rule_matches(rule, attributes):
                matched = True
                break
        if not matched:
            return False
        if namespace_error is not None:
            raise namespace_error
        if object_error is not None:
            raise object_error
        return _conditions_match(hook, attributes)

    def _namespace_matches(
        self, hook: Webhook, attributes: AdmissionAttributes
    ) -> tuple[bool, StatusError | None]:
        resource = attributes.resource
        namespace_object = _is_namespace(resource)
        if not attributes.namespace and not namespace_object:
            return True, None  # cluster-scoped objects other than Namespaces are never exempted
        selector = hook.namespace_selector
        if selector is None:
            return False, internal_error(
                f"namespaceSelector of webhook {_quote(hook.name)}: {hook.namespace_selector_error}"
            )
        if selector.is_empty():
            return True, None
        if namespace_object:
            labels = _labels(attributes.old_obj if attributes.operation == "DELETE" else attributes.obj)
        else:
            labels = self.namespace_labels(attributes.namespace)
            if labels is None:
                namespace = attributes.namespace
                return False, StatusError(
                    404,
                    "NotFound",
                    f'namespaces "{namespace}" not found',
                    {"name": namespace, "kind": "namespaces"},
                )
        return selector.matches(labels), None

    # -- one call

    def call(self, hook: Webhook, attributes: AdmissionAttributes) -> WebhookResponse:
        """Post one AdmissionReview and verify the reply; warnings go to ``attributes``.

        Raises WebhookCallError for failures failurePolicy decides on, and StatusError for a
        refusal, or for a dry run the webhook cannot take (400 whatever the failurePolicy).
        """
        if attributes.dry_run:
            if not hook.side_effects:
                raise WebhookCallError(hook.name, "Webhook SideEffects is nil")
            if hook.side_effects not in DRY_RUN_SAFE:
                raise StatusError(
                    400, "BadRequest", f"admission webhook {_quote(hook.name)} does not support dry run"
                )
        version = review_version(hook.review_versions)
        if not version:
            raise WebhookCallError(
                hook.name,
                "could not create admission objects: webhook does not accept known AdmissionReview versions (v1, v1beta1)",
            )
        uid = str(uuid.uuid4())
        body = json.dumps(review_request(attributes, uid, version), separators=(",", ":")).encode()
        endpoint = endpoint_of(hook)
        context = self._tls_context(hook) if endpoint.tls else None
        status, data = self._post(hook, endpoint, context, body)
        if not 200 <= status <= 206:
            raise WebhookCallError(hook.name, f"failed to call webhook: {http_error(status, data)}")
        response = decode_review(hook.name, data, uid, version, hook.mutating)
        for warning in response.warnings:
            attributes.add_warning(warning)
        if not response.allowed:
            raise denial(hook.name, response.result)
        return response

    def _tls_context(self, hook: Webhook) -> ssl.SSLContext:
        bundle = hook.client_config.get("caBundle")
        ca_bundle = bundle if isinstance(bundle, str) else ""
        with self._lock:
            cached = self._tls.get(ca_bundle)
        if cached is not None:
            return cached
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # Go's x509 verifies names against the subjectAltNames only
        context.hostname_checks_common_name = False
        try:
            if ca_bundle:
                pem = base64.b64decode(ca_bundle, validate=True).decode("ascii")
                context.load_verify_locations(cadata=pem)
            else:
                context.load_default_certs()
        except (binascii.Error, ValueError, ssl.SSLError) as error:
            raise WebhookCallError(
                hook.name, f"could not get REST client: unable to load root certificates: {error}"
            ) from None
        with self._lock:
            if len(self._tls) >= 64:
                self._tls.clear()
            self._tls[ca_bundle] = context
        return context

    def _post(
        self, hook: Webhook, endpoint: Endpoint, context: ssl.SSLContext | None, body: bytes
    ) -> tuple[int, bytes]:
        deadline = time.monotonic() + hook.timeout
        where = f"Post {_quote(endpoint.url)}"
        host, port = endpoint.host, endpoint.port
        if endpoint.service_namespace and self.resolve_service is not None:
            try:
                host, port = self.resolve_service(
                    endpoint.service_namespace, endpoint.service_name, endpoint.port
                )
            except Exception as unresolved:  # the server's resolver says why the service is unreachable
                raise WebhookCallError(hook.name, f"failed to call webhook: {where}: {unresolved}") from None
        address = _join_host_port(host, port)
        connection: http.client.HTTPConnection | None = None
        raw: socket.socket | None = None
        try:
            raw = socket.create_connection((host, port), timeout=_remaining(deadline))
            sock = raw
            if context is not None:
                sock = context.wrap_socket(raw, server_hostname=endpoint.server_name)
                raw = sock
            connection = http.client.HTTPConnection(host, port, timeout=_remaining(deadline))
            connection.sock = sock
            headers = {
                "Host": endpoint.host_header,
                "Content-Type": "application/json",
                "Accept": "application/json, */*",
                "User-Agent": "danm-apiserver",
            }
            sock.settimeout(_remaining(deadline))
            connection.request("POST", endpoint.path, body=body, headers=headers)
            sock.settimeout(_remaining(deadline))
            reply = connection.getresponse()
            chunks: list[bytes] = []
            size = 0
            while True:
                sock.settimeout(_remaining(deadline))
                chunk = reply.read(READ_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise WebhookCallError(
                        hook.name,
                        f"failed to call webhook: {where}: response larger than {MAX_RESPONSE_BYTES} bytes",
                    )
                chunks.append(chunk)
            return reply.status, b"".join(chunks)
        except (OSError, http.client.HTTPException, ValueError) as error:
            raise WebhookCallError(
                hook.name, f"failed to call webhook: {where}: {transport_error(error, endpoint, address)}"
            ) from None
        finally:
            if connection is not None:
                connection.close()
            elif raw is not None:
                raw.close()


def _configuration_name(obj: JsonObject) -> str:
    metadata = obj.get("metadata")
    name = metadata.get("name", "") if isinstance(metadata, dict) else ""
    return name if isinstance(name, str) else ""


def _object_matches(hook: Webhook, attributes: AdmissionAttributes) -> tuple[bool, StatusError | None]:
    selector = hook.object_selector
    if selector is None:
        return False, internal_error(
            f"objectSelector of webhook {_quote(hook.name)}: {hook.object_selector_error}"
        )
    if selector.is_empty():
        return True, None
    for obj in (attributes.obj, attributes.old_obj):
        labels = _labels(obj)
        if labels is not None and selector.matches(labels):
            return True, None
    return False, None


def _conditions_match(hook: Webhook, attributes: AdmissionAttributes) -> bool:
    """matchConditions without CEL: ``true`` and ``false`` only; a false one wins over errors."""
    problem = ""
    for number, condition in enumerate(hook.match_conditions):
        expression = condition.get("expression")
        text = expression.strip() if isinstance(expression, str) else ""
        if text == "true":
            continue
        if text == "false":
            return False
        if not problem:
            name = condition.get("name")
            shown = name if isinstance(name, str) else str(number)
            problem = (
                f"matchCondition {_quote(shown)} of webhook {_quote(hook.name)} cannot be evaluated: "
                f"this server has no CEL and evaluates only the expressions true and false, not {_quote(text)}"
            )
    if not problem:
        return True
    if hook.ignore:
        return False
    resource = attributes.resource
    details: JsonObject = {"kind": resource.plural}
    if resource.group:
        details["group"] = resource.group
    if attributes.name:
        details["name"] = attributes.name
        message = f"{resource.group_resource} {_quote(attributes.name)} is forbidden: {problem}"
    else:
        message = f"{resource.group_resource} is forbidden: {problem}"
    raise StatusError(403, "Forbidden", message, details)
