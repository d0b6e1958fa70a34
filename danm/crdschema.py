"""Custom resources against their CRD's structural ``openAPIV3Schema``, as kube-apiserver does it.

* :func:`validate` checks a (pruned, defaulted) object and returns the Status causes kube would
  send in a 422: kube-openapi's checks and its message wording, converted to field errors the way
  apiextensions-apiserver does (``Invalid value: 5000: spec.Options.vlan in body should be less than
  or equal to 4094``, ``Required value``, ``Unsupported value: "x": supported values: "a", "b"``).
* :func:`prune` drops undeclared fields and returns their paths (``Warning: unknown field "spec.foo"``);
  ``apiVersion``, ``kind`` and ``metadata`` stay at the root, and everything below
  ``x-kubernetes-preserve-unknown-fields: true`` except declared children. Non-nullable nulls without
  a default go too (kube's PruneNonNullableNullsWithoutDefaults).
* :func:`apply_defaults` fills ``default`` for absent fields and for non-nullable nulls.
* :func:`structural_causes` / :func:`structural_errors` say why a schema is not structural (or is
  otherwise refused by CRD validation); each names the schema path (``properties[spec].type``).

Values are JSON trees as ``json.loads`` builds them. Nothing here mutates its arguments.
Deliberate departures from kube: a failing ``anyOf``/``oneOf``/``allOf``/``not`` is reported on the
field itself (kube reports it on ``<nil>`` with an empty value), and integers with
``format: int32`` are range-checked (kube strips that format before validating).
"""

import ipaddress
import json
import math
import re
from datetime import date
from decimal import Decimal
from typing import Any, Final

from danm.errors import DanmError

REASON_REQUIRED: Final = "FieldValueRequired"
REASON_INVALID: Final = "FieldValueInvalid"
REASON_NOT_SUPPORTED: Final = "FieldValueNotSupported"
REASON_TYPE_INVALID: Final = "FieldValueTypeInvalid"
REASON_TOO_LONG: Final = "FieldValueTooLong"
REASON_TOO_MANY: Final = "FieldValueTooMany"
REASON_FORBIDDEN: Final = "FieldValueForbidden"

_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_MAX_JSON_INT_FLOAT: Final = 2.0**53
_META_FIELDS: Final = ("apiVersion", "kind", "metadata")
_TYPES: Final = ("array", "boolean", "integer", "number", "object", "string")


class SchemaError(DanmError):
    """The schema is malformed where a schema object is needed (structural_causes reports why)."""


class FieldCause:
    """One Status cause: ``{"reason": ..., "message": ..., "field": ...}`` in a 422 body."""

    def __init__(self, reason: str, message: str, field: str) -> None:
        self.reason = reason
        self.message = message
        self.field = field

    def as_status_cause(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        """The field error as kube prints it inside a Status message: ``field: message``."""
        return f"{self.field}: {self.message}" if self.field else self.message

    def __repr__(self) -> str:
        return f"FieldCause({self.reason!r}, {self.message!r}, {self.field!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldCause):
            return NotImplemented
        return (self.reason, self.message, self.field) == (other.reason, other.message, other.field)

    def __hash__(self) -> int:
        return hash((self.reason, self.message, self.field))


# --- Values printed the way Go prints them (fmt %v / %q, encoding/json).


def _float_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of abs(value) and the decimal point position."""
    digits_tuple = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(str(d) for d in digits_tuple.digits).lstrip("0")
    exponent = digits_tuple.exponent
    assert isinstance(exponent, int)
    if not digits:
        return "0", 1
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    return stripped, len(stripped) + exponent


def _format_e(digits: str, point: int) -> str:
    exp = point - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    sign = "-" if exp < 0 else "+"
    return f"{mantissa}e{sign}{abs(exp):02d}"


def _format_f(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _go_float(value: float) -> str:
    """fmt's %v of a float64: shortest digits, %e when the exponent is < -4 or >= 6 (hence
    "1e+06", "4094", "0.5")."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    digits, point = _float_digits(value)
    exp = point - 1
    if exp < -4 or exp >= 6:
        return sign + _format_e(digits, point)
    return sign + _format_f(digits, point)


def _go_json_float(value: float) -> str:
    """encoding/json's float64: plain decimal unless tiny or huge, exponent without padding."""
    if not math.isfinite(value):
        return "null"
    sign = "-" if value < 0 else ""
    if value == 0:
        return "0"
    digits, point = _float_digits(value)
    magnitude = abs(value)
    if magnitude < 1e-6 or magnitude >= 1e21:
        text = _format_e(digits, point)
        mantissa, _, exponent = text.partition("e")
        return f"{sign}{mantissa}e{exponent[0]}{int(exponent[1:])}"
    return sign + _format_f(digits, point)


def _go_json_string(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _go_json(value: object) -> str:
    """json.Marshal of a decoded JSON value: compact, map keys sorted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_json_float(value)
    if isinstance(value, str):
        return _go_json_string(value)
    if isinstance(value, list):
        return "[" + ",".join([_go_json(item) for item in value]) + "]"
    if isinstance(value, dict):
        parts: list[str] = []
        for key in sorted(value):
            parts.append(_go_json_string(str(key)) + ":" + _go_json(value[key]))
        return "{" + ",".join(parts) + "}"
    return _go_json_string(str(value))


_GO_ESCAPES: Final = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def _go_quote(value: str) -> str:
    """strconv.Quote (Go's %q)."""
    out: list[str] = ['"']
    for char in value:
        escaped = _GO_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def _display(value: object) -> str:
    """A bad value inside a field error: %q for strings, %v for numbers and booleans, else JSON."""
    if isinstance(value, str):
        return _go_quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    return _go_json(value)


def _limit(limit: int | float, integer_data: bool) -> str:
    """A numeric bound as kube prints it: int64(bound) against integer data, else %v of a float64."""
    if integer_data:
        return str(int(limit))
    return _go_float(float(limit))


# --- Field errors (k8s.io/apimachinery/pkg/util/validation/field), rendered as Status causes.


def _required(field: str, detail: str = "") -> FieldCause:
    return FieldCause(REASON_REQUIRED, "Required value" + (": " + detail if detail else ""), field)


def _forbidden(field: str, detail: str) -> FieldCause:
    return FieldCause(REASON_FORBIDDEN, "Forbidden: " + detail, field)


def _invalid(field: str, value: object, detail: str) -> FieldCause:
    return FieldCause(REASON_INVALID, f"Invalid value: {_display(value)}: {detail}", field)


def _type_invalid(field: str, value: object, detail: str) -> FieldCause:
    return FieldCause(REASON_TYPE_INVALID, f"Invalid value: {_display(value)}: {detail}", field)


def _not_supported(field: str, value: object, supported: list[str]) -> FieldCause:
    detail = "supported values: " + ", ".join([_go_quote(item) for item in supported])
    return FieldCause(REASON_NOT_SUPPORTED, f"Unsupported value: {_display(value)}: {detail}", field)


def _too_long(field: str, maximum: int) -> FieldCause:
    unit = "byte" if maximum == 1 else "bytes"
    return FieldCause(REASON_TOO_LONG, f"Too long: may not be more than {maximum} {unit}", field)


def _too_many(field: str, actual: int, maximum: int) -> FieldCause:
    unit = "item" if maximum == 1 else "items"
    return FieldCause(REASON_TOO_MANY, f"Too many: {actual}: must have at most {maximum} {unit}", field)


# --- JSON values.


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(schema: dict[str, Any], keyword: str) -> int | float | None:
    """A numeric keyword of a schema, or None when absent (or not a number)."""
    value = schema.get(keyword)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


def _is_integral_float(value: float) -> bool:
    """swag.IsFloat64AJSONInteger for a decoded float: finite, integral, within +-2^53."""
    return math.isfinite(value) and value.is_integer() and abs(value) <= _MAX_JSON_INT_FLOAT


def _json_type(value: object) -> str:
    """The OpenAPI type of a decoded value, as kube names it in type errors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        # Go decodes integers beyond int64 as float64
        return "integer" if _INT64_MIN <= value <= _INT64_MAX else "number"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _json_equal(left: object, right: object) -> bool:
    """Equality of decoded JSON values: 1 == 1.0, but true != 1."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) and _is_number(right):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            return False
        for index in range(len(left)):
            if not _json_equal(left[index], right[index]):
                return False
        return True
    if isinstance(left, dict) and isinstance(right, dict):
        if left.keys() != right.keys():
            return False
        for key in left:
            if not _json_equal(left[key], right[key]):
                return False
        return True
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    return False


def _node(schema: object, path: str) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise SchemaError(f"{path or '<root>'}: schema must be an object, not {_json_type(schema)}")
    return schema


def _properties(schema: dict[str, Any], path: str) -> dict[str, Any]:
    properties = schema.get("properties")
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise SchemaError(f"{path or '<root>'}: properties must be an object")
    return properties


def _schema_types(schema: dict[str, Any]) -> list[str]:
    if schema.get("x-kubernetes-int-or-string") is True:
        return ["integer", "string"]
    declared = schema.get("type")
    if isinstance(declared, str) and declared:
        return [declared]
    return []


def _type_matches(types: list[str], actual: str, value: object) -> bool:
    if actual in types:
        return True
    if actual == "number" and "integer" in types and isinstance(value, float):
        return _is_integral_float(value)
    return actual == "integer" and "number" in types


def _is_non_nullable_null(value: object, schema: object) -> bool:
    return value is None and isinstance(schema, dict) and schema.get("nullable") is not True


def _has_default(schema: dict[str, Any]) -> bool:
    return schema.get("default") is not None


# --- Patterns: ECMA/RE2 syntax on Python's re, with RE2's search semantics.

_POSIX_CLASSES: Final = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_MULTILINE_FLAG: Final = re.compile(r"\(\?[a-zA-Z]*m[a-zA-Z-]*[:)]")
_UNSUPPORTED_GROUPS: Final = ("(?=", "(?!", "(?<=", "(?<!", "(?>", "(?(", "(?#")
_PATTERNS: Final[dict[str, "re.Pattern[str]"]] = {}


def _translate_pattern(pattern: str) -> str:
    """RE2 syntax to Python's: ``$`` and ``\\z`` mean end of text, ``(?<name>`` is a named group,
    POSIX classes are spelled out; lookarounds and backreferences (not RE2) are errors."""
    out: list[str] = []
    multiline = _MULTILINE_FLAG.search(pattern) is not None
    in_class = False
    class_start = False
    index = 0
    size = len(pattern)
    while index < size:
        char = pattern[index]
        if char == "\\":
            if index + 1 >= size:
                raise re.error("trailing backslash at end of expression")
            following = pattern[index + 1]
            if following in "123456789" and not in_class:
                raise re.error(f"invalid escape sequence: \\{following} (backreferences are not supported)")
            if following == "Z":
                raise re.error("invalid escape sequence: \\Z")
            out.append("\\Z" if following == "z" else char + following)
            index += 2
            class_start = False
            continue
        if in_class:
            if char == "]" and not class_start:
                in_class = False
                out.append(char)
            elif char == "[" and pattern.startswith("[:", index):
                end = pattern.find(":]", index + 2)
                name = pattern[index + 2 : end] if end >= 0 else ""
                replacement = _POSIX_CLASSES.get(name)
                if end < 0 or replacement is None:
                    out.append("\\[")
                else:
                    out.append(replacement)
                    index = end + 1
            elif char in "[&~|":
                out.append("\\" + char)
            else:
                out.append(char)
            class_start = False
            index += 1
            continue
        if char == "[":
            in_class = True
            class_start = True
            out.append(char)
            index += 1
            if index < size and pattern[index] == "^":
                out.append("^")
                index += 1
            continue
        if char == "(" and pattern.startswith("(?", index):
            for group in _UNSUPPORTED_GROUPS:
                if pattern.startswith(group, index):
                    raise re.error(f"invalid or unsupported Perl syntax: `{group}`")
            if pattern.startswith("(?<", index):
                out.append("(?P<")
                index += 3
                continue
        if char == "$" and not multiline:
            out.append("\\Z")
        else:
            out.append(char)
        index += 1
    return "".join(out)


def _compile(pattern: str) -> "re.Pattern[str]":
    """The compiled pattern (cached); raises re.error for patterns RE2 would refuse too."""
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        compiled = re.compile(_translate_pattern(pattern), re.ASCII)
        if len(_PATTERNS) >= 4096:
            _PATTERNS.clear()
        _PATTERNS[pattern] = compiled
    return compiled


# --- Formats (kube-openapi strfmt; names compared without dashes, unknown formats ignored).

_DIGITS: Final = re.compile(r"[0-9]+")
_DATE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIME: Final = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))")
_BASE64: Final = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})")
_UUID: Final = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.IGNORECASE)
_UUID3: Final = re.compile(
    r"[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.IGNORECASE
)
_UUID4: Final = re.compile(
    r"[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}", re.IGNORECASE
)
_UUID5: Final = re.compile(
    r"[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}", re.IGNORECASE
)
_MAC_COLON: Final = re.compile(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2})+")
_MAC_DOT: Final = re.compile(r"[0-9A-Fa-f]{4}(?:\.[0-9A-Fa-f]{4})+")
_HEX_COLOR: Final = re.compile(r"#?(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def _ipv4_sloppy(text: str) -> str | None:
    """k8s.io/utils/net's parseIPv4: four decimal octets, leading zeros allowed; normalized."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    octets: list[str] = []
    for part in parts:
        if _DIGITS.fullmatch(part) is None or int(part) > 255:
            return None
        octets.append(str(int(part)))
    return ".".join(octets)


def _ipv6(text: str, sloppy: bool) -> bool:
    if "%" in text or ":" not in text:
        return False
    if sloppy and "." in text:
        head, _, tail = text.rpartition(":")
        normalized = _ipv4_sloppy(tail)
        if normalized is None:
            return False
        text = f"{head}:{normalized}"
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _is_ipv4(text: str) -> bool:
    # ParseIPSloppy(s) != nil && strings.Contains(s, "."): an IPv6 text with an embedded IPv4 passes
    if "." not in text:
        return False
    for char in text:
        if char == ".":
            return _ipv4_sloppy(text) is not None
        if char == ":":
            return _ipv6(text, True)
    return False


def _is_cidr(text: str) -> bool:
    address, slash, mask = text.partition("/")
    if not slash or _DIGITS.fullmatch(mask) is None:
        return False
    if _ipv4_sloppy(address) is not None:
        bits = 32
    elif _ipv6(address, True):
        bits = 128
    else:
        return False
    return int(mask) <= bits


def _is_date(text: str) -> bool:
    match = _DATE.fullmatch(text)
    if match is None:
        return False
    try:
        date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return False
    return True


def _is_date_time(text: str) -> bool:
    if len(text) < 4:
        return False
    parts = text.lower().split("t")
    if len(parts) < 2 or not _is_date(parts[0]):
        return False
    match = _TIME.fullmatch(parts[1])
    if match is None:
        return False
    return match.group(1) <= "23" and match.group(2) <= "59" and match.group(3) <= "59"


def _is_mac(text: str) -> bool:
    """net.ParseMAC: 6, 8 or 20 octets as aa:bb:.., aa-bb-.. or aabb.ccdd..."""
    if _MAC_COLON.fullmatch(text) is not None:
        return (len(text) + 1) // 3 in (6, 8, 20)
    if _MAC_DOT.fullmatch(text) is not None:
        return 2 * (len(text) + 1) // 5 in (6, 8, 20)
    return False


def _format_ok(name: str, text: str) -> bool:
    """Whether ``text`` is in format ``name``; formats kube does not check (or this module does not
    implement: hostname, email, uri, isbn, creditcard, ssn, rgbcolor, bsonobjectid, duration) pass."""
    normalized = name.replace("-", "")
    if normalized == "ipv4":
        return _is_ipv4(text)
    if normalized == "ipv6":
        return _ipv6(text, False)
    if normalized == "cidr":
        return _is_cidr(text)
    if normalized == "date":
        return _is_date(text)
    if normalized == "datetime":
        return _is_date_time(text)
    if normalized == "byte":
        return _BASE64.fullmatch(text) is not None
    if normalized == "uuid":
        return _UUID.fullmatch(text) is not None
    if normalized == "uuid3":
        return _UUID3.fullmatch(text) is not None
    if normalized == "uuid4":
        return _UUID4.fullmatch(text) is not None
    if normalized == "uuid5":
        return _UUID5.fullmatch(text) is not None
    if normalized == "mac":
        return _is_mac(text)
    if normalized == "hexcolor":
        return _HEX_COLOR.fullmatch(text) is not None
    return True


# --- Validation (kube-openapi's SchemaValidator, errors converted as apiextensions-apiserver does).


def validate(schema: object, obj: object) -> list[FieldCause]:
    """The causes that make ``obj`` invalid against the CRD ``schema`` (empty when valid).

    Meant for pruned and defaulted objects: undeclared fields are not looked at. At the root,
    ``metadata`` is checked only for its type and its ``name``/``generateName`` constraints;
    the server validates ObjectMeta itself.
    """
    causes: list[FieldCause] = []
    _validate_node(_node(schema, ""), obj, "", True, causes)
    return causes


def _validate_node(
    schema: dict[str, Any], value: object, path: str, root: bool, out: list[FieldCause]
) -> int:
    """Appends the causes for ``value`` to ``out``; returns how many checks passed (used like
    kube-openapi's MatchCount to pick the most relevant failing anyOf/oneOf branch)."""
    matches = 0
    types = _schema_types(schema)
    if value is None:
        if types and schema.get("nullable") is not True:
            out.append(
                _type_invalid(path, "null", f'{path} in body must be of type {",".join(types)}: "null"')
            )
        else:
            matches += 1
        return matches + _check_enum(schema, value, path, out)
    if types:
        actual = _json_type(value)
        if _type_matches(types, actual, value):
            matches += 1
        else:
            detail = f"{path} in body must be of type {','.join(types)}: {_go_quote(actual)}"
            out.append(_type_invalid(path, actual, detail))
    elif isinstance(value, str) and schema.get("format"):
        matches += 1  # kube-openapi's type validator applies to a bare format too
    if isinstance(value, dict) and schema.get("x-kubernetes-embedded-resource") is True:
        _check_embedded(value, path, out)
    matches += _check_junctors(schema, value, path, out)
    if isinstance(value, str):
        matches += _check_string(schema, value, path, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        matches += _check_number(schema, value, types, path, out)
    elif isinstance(value, list):
        matches += _check_array(schema, value, path, out)
    matches += _check_enum(schema, value, path, out)
    if isinstance(value, dict):
        matches += _check_object(schema, value, path, root, out)
    return matches


def _check_embedded(value: dict[str, Any], path: str, out: list[FieldCause]) -> None:
    """x-kubernetes-embedded-resource: apiVersion and kind must be non-empty strings."""
    for key in ("apiVersion", "kind"):
        field = _join(path, key)
        if key not in value:
            out.append(_required(field, "must not be empty"))
        elif not isinstance(value[key], str):
            out.append(_invalid(field, value[key], "must be a string"))
        elif not value[key]:
            out.append(_invalid(field, "", "must not be empty"))


def _branches(schema: dict[str, Any], keyword: str, path: str) -> list[dict[str, Any]]:
    branches = schema.get(keyword)
    if branches is None:
        return []
    if not isinstance(branches, list):
        raise SchemaError(f"{path or '<root>'}: {keyword} must be a list")
    return [_node(branch, path) for branch in branches]


def _check_junctors(schema: dict[str, Any], value: object, path: str, out: list[FieldCause]) -> int:
    matches = 0
    quoted = _go_quote(path)
    best: list[FieldCause] = []
    branch_causes: list[FieldCause] = []

    any_of = _branches(schema, "anyOf", path)
    if any_of:
        best_matches = -1
        succeeded = False
        for branch in any_of:
            branch_causes = []
            branch_matches = _validate_node(branch, value, path, False, branch_causes)
            if not branch_causes:
                succeeded = True
                matches += branch_matches
                break
            if branch_matches > best_matches:
                best, best_matches = branch_causes, branch_matches
        if not succeeded:
            out.append(_invalid(path, value, f"{quoted} must validate at least one schema (anyOf)"))
            out.extend(best)

    one_of = _branches(schema, "oneOf", path)
    if one_of:
        best = []
        best_matches = -1
        valid = 0
        for branch in one_of:
            branch_causes = []
            branch_matches = _validate_node(branch, value, path, False, branch_causes)
            if not branch_causes:
                valid += 1
                matches += branch_matches
            elif valid == 0 and branch_matches > best_matches:
                best, best_matches = branch_causes, branch_matches
        if valid != 1:
            found = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
            out.append(
                _invalid(path, value, f"{quoted} must validate one and only one schema (oneOf). {found}")
            )
            if valid == 0:
                out.extend(best)

    all_of = _branches(schema, "allOf", path)
    if all_of:
        valid = 0
        for branch in all_of:
            branch_causes = []
            matches += _validate_node(branch, value, path, False, branch_causes)
            if not branch_causes:
                valid += 1
            out.extend(branch_causes)
        if valid != len(all_of):
            none = ". None validated" if valid == 0 else ""
            out.append(_invalid(path, value, f"{quoted} must validate all the schemas (allOf){none}"))

    if "not" in schema:
        negated = _node(schema["not"], path)
        branch_causes = []
        _validate_node(negated, value, path, False, branch_causes)
        if branch_causes:
            matches += 1
        else:
            out.append(_invalid(path, value, f"{quoted} must not validate the schema (not)"))
    return matches


def _check_string(schema: dict[str, Any], value: str, path: str, out: list[FieldCause]) -> int:
    matches = 0
    failed = False
    max_length = schema.get("maxLength")
    if isinstance(max_length, int) and not isinstance(max_length, bool):
        if len(value) > max_length:
            out.append(_too_long(path, max_length))
            failed = True
        else:
            matches += 1
    min_length = schema.get("minLength")
    if not failed and isinstance(min_length, int) and not isinstance(min_length, bool):
        if len(value) < min_length:
            out.append(_invalid(path, value, f"{path} in body should be at least {min_length} chars long"))
            failed = True
        else:
            matches += 1
    pattern = schema.get("pattern")
    if not failed and isinstance(pattern, str) and pattern:
        try:
            compiled = _compile(pattern)
        except re.error as error:
            detail = f"{path} in body should match '{pattern}, but pattern is invalid: {error}'"
            out.append(_invalid(path, value, detail))
        else:
            if compiled.search(value) is None:
                out.append(_invalid(path, value, f"{path} in body should match '{pattern}'"))
            else:
                matches += 1
    format_name = schema.get("format")
    if isinstance(format_name, str) and format_name:
        if _format_ok(format_name, value):
            matches += 1
        else:
            detail = f"{path} in body must be of type {format_name}: {_go_quote(value)}"
            out.append(_type_invalid(path, value, detail))
    return matches


def _is_multiple(value: int | float, factor: int | float) -> bool:
    if isinstance(value, int) and isinstance(factor, int):
        return value % factor == 0
    if isinstance(value, int) and isinstance(factor, float) and factor.is_integer():
        return value % int(factor) == 0
    quotient = (1 / factor) * value if factor < 1 else value / factor
    if not math.isfinite(quotient) or abs(quotient) > _MAX_JSON_INT_FLOAT:
        return False
    truncated = float(math.trunc(quotient))
    if quotient == truncated:
        return True
    return abs(quotient - truncated) / (abs(quotient) + abs(truncated)) < 1e-9


def _check_number(
    schema: dict[str, Any], value: int | float, types: list[str], path: str, out: list[FieldCause]
) -> int:
    matches = 0
    integer_data = isinstance(value, int)
    if schema.get("format") == "int32" and "integer" in types:
        if integer_data or (isinstance(value, float) and _is_integral_float(value)):
            if not _INT32_MIN <= int(value) <= _INT32_MAX:
                detail = f"Checked value must be of type integer with format int32 in {path}"
                out.append(_invalid(path, value, detail))
            else:
                matches += 1
    factor = _number(schema, "multipleOf")
    if factor is not None and factor != 0:
        if factor < 0:
            out.append(
                _invalid(
                    path, value, f"factor MultipleOf declared for {path} must be positive: {_display(factor)}"
                )
            )
        elif not _is_multiple(value, factor):
            detail = f"{path} in body should be a multiple of {_limit(factor, integer_data)}"
            out.append(_invalid(path, value, detail))
        else:
            matches += 1
    minimum = _number(schema, "minimum")
    if minimum is not None:
        exclusive = schema.get("exclusiveMinimum") is True
        if value < minimum or (exclusive and value == minimum):
            relation = "greater than" if exclusive else "greater than or equal to"
            detail = f"{path} in body should be {relation} {_limit(minimum, integer_data)}"
            out.append(_invalid(path, value, detail))
        else:
            matches += 1
    maximum = _number(schema, "maximum")
    if maximum is not None:
        exclusive = schema.get("exclusiveMaximum") is True
        if value > maximum or (exclusive and value == maximum):
            relation = "less than" if exclusive else "less than or equal to"
            detail = f"{path} in body should be {relation} {_limit(maximum, integer_data)}"
            out.append(_invalid(path, value, detail))
        else:
            matches += 1
    return matches


def _check_array(schema: dict[str, Any], value: list[Any], path: str, out: list[FieldCause]) -> int:
    matches = 0
    items = schema.get("items")
    if isinstance(items, dict):
        for index, item in enumerate(value):
            matches += _validate_node(items, item, f"{path}[{index}]", False, out)
    min_items = schema.get("minItems")
    if isinstance(min_items, int) and not isinstance(min_items, bool):
        if len(value) < min_items:
            out.append(_invalid(path, len(value), f"{path} in body should have at least {min_items} items"))
        else:
            matches += 1
    max_items = schema.get("maxItems")
    if isinstance(max_items, int) and not isinstance(max_items, bool):
        if len(value) > max_items:
            out.append(_too_many(path, len(value), max_items))
        else:
            matches += 1
    if schema.get("uniqueItems") is True:
        if _has_duplicates(value):
            out.append(_invalid(path, "", f"{path} in body shouldn't contain duplicates"))
        else:
            matches += 1
    return matches


def _has_duplicates(values: list[Any]) -> bool:
    for index in range(len(values)):
        for other in range(index):
            if _json_equal(values[index], values[other]):
                return True
    return False


def _check_enum(schema: dict[str, Any], value: object, path: str, out: list[FieldCause]) -> int:
    allowed = schema.get("enum")
    if not isinstance(allowed, list) or not allowed:
        return 0
    for candidate in allowed:
        if _json_equal(value, candidate):
            return 1
    supported = [item if isinstance(item, str) else _go_json(item) for item in allowed]
    out.append(_not_supported(path, value, supported))
    return 0


def _root_metadata(schema: object) -> dict[str, Any]:
    """What of a root ``metadata`` schema applies: its type, and name/generateName constraints."""
    reduced: dict[str, Any] = {}
    if not isinstance(schema, dict):
        return reduced
    if "type" in schema:
        reduced["type"] = schema["type"]
    properties = schema.get("properties")
    if isinstance(properties, dict):
        kept = {key: properties[key] for key in ("name", "generateName") if key in properties}
        if kept:
            reduced["properties"] = kept
    return reduced


def _check_object(
    schema: dict[str, Any], value: dict[str, Any], path: str, root: bool, out: list[FieldCause]
) -> int:
    matches = 0
    count = len(value)
    min_properties = schema.get("minProperties")
    if isinstance(min_properties, int) and not isinstance(min_properties, bool) and count < min_properties:
        out.append(_invalid(path, count, f"{path} in body should have at least {min_properties} properties"))
        return matches
    max_properties = schema.get("maxProperties")
    if isinstance(max_properties, int) and not isinstance(max_properties, bool) and count > max_properties:
        out.append(_too_many(path, count, max_properties))
        return matches
    properties = _properties(schema, path)
    additional = schema.get("additionalProperties")
    if additional is False:
        for key in value:
            if key not in properties:
                out.append(_invalid(path, key, f"{path}.{key} in body is a forbidden property"))
    elif isinstance(additional, dict):
        for key, item in value.items():
            if key not in properties:
                matches += _validate_node(additional, item, _join(path, key), False, out)
    for key, child in properties.items():
        if key in value:
            child_schema = (
                _root_metadata(child) if root and key == "metadata" else _node(child, _join(path, key))
            )
            matches += _validate_node(child_schema, value[key], _join(path, key), False, out)
    required = schema.get("required")
    if isinstance(required, list):
        for key in required:
            if isinstance(key, str) and key not in value:
                out.append(_required(_join(path, key)))
            else:
                matches += 1
    return matches


# --- Pruning (structuralpruning.Prune plus PruneNonNullableNullsWithoutDefaults).


def prune(schema: object, obj: object) -> tuple[Any, list[str]]:
    """A copy of ``obj`` without undeclared fields, and the dotted paths of the fields dropped."""
    unknown: list[str] = []
    pruned = _prune(obj, _node(schema, ""), "", unknown, True)
    return pruned, unknown


def _child_schema(
    schema: dict[str, Any], properties: dict[str, Any], key: str, path: str
) -> dict[str, Any] | None:
    """The schema for ``key`` of a map: its property, else a schema-valued additionalProperties."""
    if key in properties:
        return _node(properties[key], _join(path, key))
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        return additional
    return None


def _prune(value: Any, schema: dict[str, Any] | None, path: str, unknown: list[str], root: bool) -> Any:
    if schema is not None and schema.get("x-kubernetes-preserve-unknown-fields") is True:
        return _skip_prune(value, schema, path, unknown)
    if isinstance(value, dict):
        if schema is None:
            for key in value:
                unknown.append(_join(path, key))
            return {}
        properties = _properties(schema, path)
        additional = schema.get("additionalProperties")
        embedded = root or schema.get("x-kubernetes-embedded-resource") is True
        pruned: dict[str, Any] = {}
        for key, item in value.items():
            if embedded and _keeps_meta_field(key, item):
                pruned[key] = _copy(item)
                continue
            child = _child_schema(schema, properties, key, path)
            if child is not None:
                if _is_non_nullable_null(item, child) and not _has_default(child):
                    continue
                pruned[key] = _prune(item, child, _join(path, key), unknown, False)
            elif additional is not None:
                # additionalProperties true/false: the key stays (validation judges it), its
                # value has no schema
                pruned[key] = _prune(item, None, _join(path, key), unknown, False)
            elif not (root and key in _META_FIELDS):
                unknown.append(_join(path, key))
        return pruned
    if isinstance(value, list):
        items = schema.get("items") if schema is not None else None
        item_schema = _node(items, path + "[]") if items is not None else None
        return [
            _prune(item, item_schema, f"{path}[{index}]", unknown, False) for index, item in enumerate(value)
        ]
    return value


def _keeps_meta_field(key: str, value: object) -> bool:
    """At a resource root: apiVersion and kind if strings, metadata if an object, stay as they are."""
    if key == "apiVersion" or key == "kind":
        return isinstance(value, str)
    return key == "metadata" and isinstance(value, dict)


def _skip_prune(value: Any, schema: dict[str, Any], path: str, unknown: list[str]) -> Any:
    """Below x-kubernetes-preserve-unknown-fields: keep unknown fields, prune declared ones."""
    if isinstance(value, dict):
        properties = _properties(schema, path)
        embedded = schema.get("x-kubernetes-embedded-resource") is True
        kept: dict[str, Any] = {}
        for key, item in value.items():
            if embedded and key in _META_FIELDS:
                kept[key] = _copy(item)
                continue
            child = _child_schema(schema, properties, key, path)
            if child is None:
                kept[key] = _copy(item)
            elif not (_is_non_nullable_null(item, child) and not _has_default(child)):
                kept[key] = _prune(item, child, _join(path, key), unknown, False)
        return kept
    if isinstance(value, list):
        items = schema.get("items")
        if items is None:
            return _copy(value)
        item_schema = _node(items, path + "[]")
        return [
            _skip_prune(item, item_schema, f"{path}[{index}]", unknown) for index, item in enumerate(value)
        ]
    return value


# --- Defaulting (structuraldefaulting.Default).


def apply_defaults(schema: object, obj: object) -> Any:
    """A copy of ``obj`` with ``default`` filled in wherever a declared field is absent, or null
    without being nullable: in properties, and for null array items and map values."""
    result = _copy(obj)
    _default(result, _node(schema, ""), "", True)
    return result


def _default(value: Any, schema: dict[str, Any], path: str, root: bool) -> None:
    if isinstance(value, dict):
        properties = _properties(schema, path)
        for key, child in properties.items():
            if root and key == "metadata":
                continue
            child_schema = _node(child, _join(path, key))
            if _has_default(child_schema) and (
                key not in value or _is_non_nullable_null(value[key], child_schema)
            ):
                value[key] = _copy(child_schema["default"])
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                if not (root and key == "metadata"):
                    _default(item, _node(properties[key], _join(path, key)), _join(path, key), False)
            elif isinstance(additional, dict):
                if _is_non_nullable_null(item, additional) and _has_default(additional):
                    value[key] = _copy(additional["default"])
                else:
                    _default(item, additional, _join(path, key), False)
    elif isinstance(value, list):
        items = schema.get("items")
        if items is None:
            return
        item_schema = _node(items, path + "[]")
        for index, item in enumerate(value):
            if _is_non_nullable_null(item, item_schema) and _has_default(item_schema):
                value[index] = _copy(item_schema["default"])
            else:
                _default(item, item_schema, f"{path}[{index}]", False)


# --- Structural schema checks (apiextensions-apiserver schema.ValidateStructural, plus the
# openAPIV3Schema rules of CRD validation that make a schema unusable).

_ROOT: Final = 0
_ITEM: Final = 1
_FIELD: Final = 2

# keywords CRD validation refuses anywhere in a schema
_UNSUPPORTED: Final = (
    ("$ref", "$ref is not supported"),
    ("id", "id is not supported"),
    ("definitions", "definitions is not supported"),
    ("dependencies", "dependencies is not supported"),
    ("patternProperties", "patternProperties is not supported"),
    ("additionalItems", "additionalItems is not supported"),
)
# (keyword, message) forbidden inside allOf/anyOf/oneOf/not when set to anything but its zero value
_NESTED_FORBIDDEN: Final = (
    ("type", "must be empty to be structural"),
    ("default", "must be undefined to be structural"),
    ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"),
    ("nullable", "must be false to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "must be undefined to be structural"),
    ("x-kubernetes-validations", "must be empty to be structural"),
)
_ROOT_METADATA_FORBIDDEN: Final = (
    "must not specify anything other than name and generateName, but metadata is implicitly specified"
)


def structural_errors(schema: object, root: str = "") -> list[str]:
    """Why ``schema`` is not a structural schema kube would accept, as ``path: message`` lines
    (sorted, like kube's); empty when it is. ``root`` prefixes every path, e.g.
    ``spec.versions[0].schema.openAPIV3Schema``."""
    return [str(cause) for cause in structural_causes(schema, root)]


def structural_causes(schema: object, root: str = "") -> list[FieldCause]:
    """:func:`structural_errors` as Status causes, for a 422 on the CustomResourceDefinition."""
    causes: list[FieldCause] = []
    _structural(schema, _ROOT, root, causes)
    causes.sort(key=str)
    return causes


def _child_path(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _is_set(value: object) -> bool:
    """Whether a keyword differs from Go's zero value (false, "", empty list or map, null)."""
    if value is None or value is False:
        return False
    if isinstance(value, (str, list, dict)):
        return len(value) > 0
    return True


def _int_or_string_any_of(branches: object) -> bool:
    """anyOf: [{type: integer}, {type: string}], the one shape allowed with x-kubernetes-int-or-string."""
    return (
        isinstance(branches, list)
        and len(branches) == 2
        and branches[0] == {"type": "integer"}
        and branches[1] == {"type": "string"}
    )


def _check_keywords(schema: dict[str, Any], path: str, out: list[FieldCause]) -> None:
    """Keywords refused wherever they appear, structural node or value validation."""
    for keyword, detail in _UNSUPPORTED:
        if keyword in schema:
            out.append(_forbidden(_child_path(path, keyword), detail))
    if schema.get("uniqueItems") is True:
        detail = "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
        out.append(_forbidden(_child_path(path, "uniqueItems"), detail))
    if isinstance(schema.get("items"), list):
        out.append(_forbidden(_child_path(path, "items"), "items must be a schema object and not an array"))
    pattern = schema.get("pattern")
    if pattern is not None:
        if not isinstance(pattern, str):
            out.append(_invalid(_child_path(path, "pattern"), pattern, "must be a string"))
        else:
            try:
                _compile(pattern)
            except re.error as error:
                detail = f"must be a valid regular expression, but isn't: {error}"
                out.append(_invalid(_child_path(path, "pattern"), pattern, detail))


def _structural(schema: object, level: int, path: str, out: list[FieldCause]) -> None:
    if not isinstance(schema, dict):
        out.append(_invalid(path, schema, "must be a schema object"))
        return
    _check_keywords(schema, path, out)
    declared = schema.get("type")
    if declared is not None and declared not in _TYPES:
        out.append(_not_supported(_child_path(path, "type"), declared, list(_TYPES)))
    type_name = declared if isinstance(declared, str) else ""

    items = schema.get("items")
    if type_name == "array" and items is None:
        out.append(_required(_child_path(path, "items"), "must be specified"))
    if items is not None and not isinstance(items, list):
        _structural(items, _ITEM, _child_path(path, "items"), out)

    properties = schema.get("properties")
    if properties is not None and not isinstance(properties, dict):
        out.append(_invalid(_child_path(path, "properties"), properties, "must be an object"))
        properties = None
    if properties is not None:
        for key, child in properties.items():
            _structural(child, _FIELD, f"{_child_path(path, 'properties')}[{key}]", out)

    additional = schema.get("additionalProperties")
    if additional is not None:
        if level == _ROOT:
            out.append(_forbidden(_child_path(path, "additionalProperties"), "must not be used at the root"))
        if properties and (additional is False or isinstance(additional, dict)):
            detail = "additionalProperties and properties are mutual exclusive"
            out.append(_forbidden(_child_path(path, "additionalProperties"), detail))
        if isinstance(additional, dict):
            _structural(additional, _FIELD, _child_path(path, "additionalProperties"), out)
        elif not isinstance(additional, bool):
            out.append(
                _invalid(
                    _child_path(path, "additionalProperties"), additional, "must be a schema or a boolean"
                )
            )

    int_or_string = schema.get("x-kubernetes-int-or-string") is True
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    embedded = schema.get("x-kubernetes-embedded-resource") is True
    if preserve is not None and preserve is not True:
        out.append(
            _invalid(
                _child_path(path, "x-kubernetes-preserve-unknown-fields"),
                preserve,
                "must be true or undefined",
            )
        )
    preserve_unknown = preserve is True
    if int_or_string and preserve_unknown:
        detail = "must be false if x-kubernetes-int-or-string is true"
        out.append(_invalid(_child_path(path, "x-kubernetes-preserve-unknown-fields"), True, detail))
    if int_or_string and embedded:
        detail = "must be false if x-kubernetes-int-or-string is true"
        out.append(_invalid(_child_path(path, "x-kubernetes-embedded-resource"), True, detail))

    skip_any_of = _int_or_string_any_of(schema.get("anyOf"))
    all_of = schema.get("allOf")
    skip_first_all_of = (
        isinstance(all_of, list)
        and len(all_of) > 0
        and isinstance(all_of[0], dict)
        and _int_or_string_any_of(all_of[0].get("anyOf"))
    )
    _value_validation(schema, skip_any_of, skip_first_all_of, path, out)
    _completeness(schema, schema, path, path, out)

    if embedded and type_name != "object":
        detail = "must be object if x-kubernetes-embedded-resource is true"
        if not type_name:
            out.append(_required(_child_path(path, "type"), detail))
        else:
            out.append(_invalid(_child_path(path, "type"), type_name, detail))
    elif not type_name and not int_or_string and not preserve_unknown:
        if level == _ROOT:
            out.append(_required(_child_path(path, "type"), "must not be empty at the root"))
        elif level == _ITEM:
            out.append(_required(_child_path(path, "type"), "must not be empty for specified array items"))
        else:
            out.append(_required(_child_path(path, "type"), "must not be empty for specified object fields"))
    if embedded and additional is not None:
        detail = "must not be used if x-kubernetes-embedded-resource is set"
        out.append(_forbidden(_child_path(path, "additionalProperties"), detail))
    if level == _ROOT and type_name and type_name != "object":
        out.append(_invalid(_child_path(path, "type"), type_name, "must be object at the root"))

    check_metadata = level == _ROOT or embedded
    if properties is not None:
        properties_path = _child_path(path, "properties")
        for key in ("kind", "apiVersion"):
            child = properties.get(key)
            if check_metadata and isinstance(child, dict) and child.get("type") != "string":
                out.append(
                    _invalid(f"{properties_path}[{key}].type", child.get("type", ""), "must be string")
                )
        metadata = properties.get("metadata")
        if isinstance(metadata, dict):
            metadata_path = f"{properties_path}[metadata]"
            if check_metadata and metadata.get("type") != "object":
                out.append(
                    _invalid(_child_path(metadata_path, "type"), metadata.get("type", ""), "must be object")
                )
            if level == _ROOT and not _root_metadata_allowed(metadata):
                out.append(_forbidden(metadata_path, _ROOT_METADATA_FORBIDDEN))
    if embedded and not preserve_unknown and not properties:
        detail = "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"
        out.append(_required(_child_path(path, "properties"), detail))

    if level != _ROOT and _has_default(schema):
        _check_default(schema, path, out)


def _root_metadata_allowed(metadata: dict[str, Any]) -> bool:
    """Root metadata may only be an object and constrain name and generateName."""
    for key, value in metadata.items():
        if key == "type":
            continue
        if key == "properties" and isinstance(value, dict):
            if not set(value) <= {"name", "generateName"}:
                return False
            continue
        if _is_set(value):
            return False
    return True


def _check_default(schema: dict[str, Any], path: str, out: list[FieldCause]) -> None:
    """A default must be valid against its own schema and carry no field the schema prunes."""
    default_path = _child_path(path, "default")
    value = schema["default"]
    causes: list[FieldCause] = []
    unknown: list[str] = []
    try:
        _validate_node(schema, value, "", False, causes)
        _prune(value, schema, "", unknown, False)
    except SchemaError:
        return  # reported where the schema is malformed
    for cause in causes:
        field = default_path if not cause.field else f"{default_path}.{cause.field}"
        out.append(FieldCause(cause.reason, cause.message, field))
    if unknown:
        out.append(_invalid(default_path, value, "must not have unknown fields"))


def _value_validation(
    schema: dict[str, Any],
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    path: str,
    out: list[FieldCause],
) -> None:
    """The allOf/anyOf/oneOf/not branches of a node must hold value validations only."""
    for keyword in ("anyOf", "allOf", "oneOf"):
        if keyword == "anyOf" and skip_any_of:
            continue
        branches = schema.get(keyword)
        if branches is None:
            continue
        if not isinstance(branches, list):
            out.append(_invalid(_child_path(path, keyword), branches, "must be a list of schemas"))
            continue
        for index, branch in enumerate(branches):
            skip = keyword == "allOf" and index == 0 and skip_first_all_of_any_of
            _nested(branch, skip, f"{_child_path(path, keyword)}[{index}]", out)
    if "not" in schema:
        _nested(schema["not"], False, _child_path(path, "not"), out)


def _nested(schema: object, skip_any_of: bool, path: str, out: list[FieldCause]) -> None:
    if not isinstance(schema, dict):
        out.append(_invalid(path, schema, "must be a schema object"))
        return
    _check_keywords(schema, path, out)
    _value_validation(schema, skip_any_of, False, path, out)
    items = schema.get("items")
    if isinstance(items, dict):
        _nested(items, False, _child_path(path, "items"), out)
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for key, child in properties.items():
            _nested(child, False, f"{_child_path(path, 'properties')}[{key}]", out)
        if "metadata" in properties:
            out.append(
                _forbidden(
                    f"{_child_path(path, 'properties')}[metadata]",
                    "must not be specified in a nested context",
                )
            )
    if "additionalProperties" in schema:
        out.append(
            _forbidden(_child_path(path, "additionalProperties"), "must be undefined to be structural")
        )
    for keyword, detail in _NESTED_FORBIDDEN:
        if keyword in schema and _is_set(schema[keyword]):
            out.append(_forbidden(_child_path(path, keyword), detail))


def _completeness(
    value_schema: dict[str, Any],
    structural: dict[str, Any] | None,
    s_path: str,
    v_path: str,
    out: list[FieldCause],
) -> None:
    """Every property or items a branch constrains must be declared in the structural part."""
    for keyword in ("allOf", "anyOf", "oneOf"):
        branches = value_schema.get(keyword)
        if isinstance(branches, list):
            for index, branch in enumerate(branches):
                if isinstance(branch, dict):
                    _nested_completeness(
                        branch, structural, s_path, f"{_child_path(v_path, keyword)}[{index}]", out
                    )
    negated = value_schema.get("not")
    if isinstance(negated, dict):
        _nested_completeness(negated, structural, s_path, _child_path(v_path, "not"), out)


def _nested_completeness(
    branch: dict[str, Any], structural: dict[str, Any] | None, s_path: str, v_path: str, out: list[FieldCause]
) -> None:
    if structural is None:
        out.append(_required(s_path, f"because it is defined in {v_path}"))
        return
    _completeness(branch, structural, s_path, v_path, out)
    items = branch.get("items")
    if isinstance(items, dict):
        structural_items = structural.get("items")
        _nested_completeness(
            items,
            structural_items if isinstance(structural_items, dict) else None,
            _child_path(s_path, "items"),
            _child_path(v_path, "items"),
            out,
        )
    properties = branch.get("properties")
    if isinstance(properties, dict):
        declared = structural.get("properties")
        declared_properties = declared if isinstance(declared, dict) else {}
        for key, child in properties.items():
            if not isinstance(child, dict):
                continue
            s_child = f"{_child_path(s_path, 'properties')}[{key}]"
            v_child = f"{_child_path(v_path, 'properties')}[{key}]"
            target = declared_properties.get(key)
            if isinstance(target, dict):
                _nested_completeness(child, target, s_child, v_child, out)
            else:
                out.append(_required(s_child, f"because it is defined in {v_child}"))
