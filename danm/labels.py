"""Kubernetes labels: key and value syntax, and label selectors (string and structured forms).

The string grammar is the one kube-apiserver parses in ``?labelSelector=`` (comma means AND):
``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``, ``k>n``, ``k<n``.
The structured form (``matchLabels`` / ``matchExpressions``) is what webhook configurations and
workloads carry. Both compile to the same list of requirements.
"""

import re
from typing import Final

from danm.errors import DanmError

_NAME: Final = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
NAME_MAX: Final = 63
PREFIX_MAX: Final = 253

OP_EQUALS: Final = "="
OP_NOT_EQUALS: Final = "!="
OP_IN: Final = "in"
OP_NOT_IN: Final = "notin"
OP_EXISTS: Final = "exists"
OP_DOES_NOT_EXIST: Final = "!"
OP_GREATER: Final = "gt"
OP_LESS: Final = "lt"


class SelectorError(DanmError):
    """A selector or label that does not parse; the API server answers 400 (or 422 on objects)."""


def label_key_error(key: str) -> str | None:
    """Why ``key`` is not a valid qualified label key, or None when it is."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return "prefix part must be non-empty"
    if slash:
        if len(prefix) > PREFIX_MAX:
            return f"prefix part must be no more than {PREFIX_MAX} characters"
        if not _DNS_SUBDOMAIN.match(prefix):
            return "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
    if not name:
        return "name part must be non-empty"
    if len(name) > NAME_MAX:
        return f"name part must be no more than {NAME_MAX} characters"
    if not _NAME.match(name):
        return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
    return None


def label_value_error(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or None when it is (empty is valid)."""
    if len(value) > NAME_MAX:
        return f"must be no more than {NAME_MAX} characters"
    if value and not _NAME.match(value):
        return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
    return None


class Requirement:
    """One condition on one label key."""

    def __init__(self, key: str, operator: str, values: list[str]) -> None:
        self.key = key
        self.operator = operator
        self.values = values

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key, "")
        op = self.operator
        if op == OP_EQUALS or op == OP_IN:
            return present and value in self.values
        if op == OP_NOT_EQUALS or op == OP_NOT_IN:
            return not present or value not in self.values
        if op == OP_EXISTS:
            return present
        if op == OP_DOES_NOT_EXIST:
            return not present
        if not present:
            return False
        try:
            number = int(value)
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if op == OP_GREATER else number < bound

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Requirement)
            and (self.key, self.operator, self.values) == (other.key, other.operator, other.values)
        )

    def __repr__(self) -> str:
        return f"Requirement({self.key!r}, {self.operator!r}, {self.values!r})"


class Selector:
    """A conjunction of requirements; the empty selector matches everything."""

    def __init__(self, requirements: list[Requirement]) -> None:
        self.requirements = requirements

    def matches(self, labels: dict[str, str] | None) -> bool:
        present = labels or {}
        return all(requirement.matches(present) for requirement in self.requirements)

    def is_empty(self) -> bool:
        return not self.requirements


# --- The string form


_TOKEN: Final = re.compile(r"\s*(==|!=|=|>|<|\(|\)|,|!|[^\s=!<>(),]+)")


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise SelectorError(f"unable to parse requirement: unexpected character at {position}")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def parse_selector(text: str) -> Selector:
    """Parse a ``labelSelector`` query string."""
    tokens = _tokens(text)
    requirements: list[Requirement] = []
    position = 0
    while position < len(tokens):
        requirement, position = _requirement(tokens, position, text)
        requirements.append(requirement)
        if position < len(tokens):
            if tokens[position] != ",":
                raise SelectorError(f"found '{tokens[position]}', expected: ',' or 'end of string'")
            position += 1
            if position == len(tokens):
                raise SelectorError("found 'end of string', expected: identifier")
    return Selector(requirements)


def _requirement(tokens: list[str], position: int, text: str) -> tuple[Requirement, int]:
    negated = tokens[position] == "!"
    if negated:
        position += 1
        if position == len(tokens):
            raise SelectorError("found 'end of string', expected: identifier after '!'")
    key = tokens[position]
    if key in ("=", "==", "!=", "(", ")", ",", ">", "<", "!"):
        raise SelectorError(f"found '{key}', expected: !, identifier, or 'end of string'")
    _check_key(key)
    position += 1
    if negated:
        return Requirement(key, OP_DOES_NOT_EXIST, []), position
    if position == len(tokens) or tokens[position] == ",":
        return Requirement(key, OP_EXISTS, []), position
    operator = tokens[position]
    position += 1
    if operator in ("=", "==", "!="):
        value, position = _value(tokens, position)
        return Requirement(key, OP_NOT_EQUALS if operator == "!=" else OP_EQUALS, [value]), position
    if operator in (">", "<"):
        if position == len(tokens):
            raise SelectorError("found 'end of string', expected: an integer value")
        bound = tokens[position]
        if not re.fullmatch(r"-?\d+", bound):
            raise SelectorError(f"for '{operator}' operator, the value must be an integer: {bound!r}")
        return Requirement(key, OP_GREATER if operator == ">" else OP_LESS, [bound]), position + 1
    if operator in ("in", "notin"):
        if position == len(tokens) or tokens[position] != "(":
            raise SelectorError(f"found '{tokens[position] if position < len(tokens) else 'end of string'}', expected: '('")
        position += 1
        values: list[str] = []
        while True:
            if position == len(tokens):
                raise SelectorError("found 'end of string', expected: ')'")
            if tokens[position] == ")" and not values:
                raise SelectorError("for 'in', 'notin' operators, values set can't be empty")
            value, position = _value(tokens, position)
            values.append(value)
            if position == len(tokens):
                raise SelectorError("found 'end of string', expected: ',' or ')'")
            if tokens[position] == ")":
                position += 1
                break
            if tokens[position] != ",":
                raise SelectorError(f"found '{tokens[position]}', expected: ',' or ')'")
            position += 1
        return Requirement(key, OP_IN if operator == "in" else OP_NOT_IN, values), position
    raise SelectorError(f"found '{operator}', expected: in, notin, =, ==, !=, gt, lt")


def _value(tokens: list[str], position: int) -> tuple[str, int]:
    """A value token; an empty value (``k=`` or ``k in (,a)``) is allowed, as upstream does."""
    if position == len(tokens) or tokens[position] in (",", ")"):
        return "", position
    value = tokens[position]
    if value in ("=", "==", "!=", "(", "!", ">", "<"):
        raise SelectorError(f"found '{value}', expected: identifier")
    reason = label_value_error(value)
    if reason is not None:
        raise SelectorError(f"invalid label value: {value!r}: {reason}")
    return value, position + 1


def _check_key(key: str) -> None:
    reason = label_key_error(key)
    if reason is not None:
        raise SelectorError(f"invalid label key {key!r}: {reason}")


# --- The structured form (metav1.LabelSelector)


def selector_from_structure(match_labels: dict[str, str] | None, expressions: list[dict[str, object]] | None) -> Selector:
    """Compile ``matchLabels`` and ``matchExpressions``; both empty selects everything."""
    requirements: list[Requirement] = []
    for label, value in sorted((match_labels or {}).items()):
        _check_key(label)
        reason = label_value_error(value)
        if reason is not None:
            raise SelectorError(f"invalid label value {value!r}: {reason}")
        requirements.append(Requirement(label, OP_EQUALS, [value]))
    for expression in expressions or []:
        key = expression.get("key")
        operator = expression.get("operator")
        raw_values = expression.get("values") or []
        if not isinstance(key, str) or not isinstance(raw_values, list):
            raise SelectorError("matchExpressions entries need a string key and a list of values")
        _check_key(key)
        values = [str(value) for value in raw_values]
        if operator in ("In", "NotIn"):
            if not values:
                raise SelectorError(f"values: Required value: must be specified when operator is {operator}")
            requirements.append(Requirement(key, OP_IN if operator == "In" else OP_NOT_IN, values))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                raise SelectorError(f"values: Forbidden: may not be specified when operator is {operator}")
            requirements.append(Requirement(key, OP_EXISTS if operator == "Exists" else OP_DOES_NOT_EXIST, []))
        else:
            raise SelectorError(f"operator: Invalid value: {operator!r}: not a valid selector operator")
    return Selector(requirements)
