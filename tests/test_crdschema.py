"""danm.crdschema: validation, pruning, defaulting and structural checks of custom resources,
against danm's own CRDs and fixtures and against the generic cases of the Kubernetes CRD docs."""

import copy
from typing import Any

import pytest
import yaml

from danm.crdschema import (
    FieldCause,
    SchemaError,
    apply_defaults,
    prune,
    structural_causes,
    structural_errors,
    validate,
)
from testlib import REPO, load_fixture

CRD_FILES = sorted((REPO / "deploy" / "crds").glob("*.yaml"))

FIXTURES_BY_KIND = {
    "DanmNet": ["danmnet.json", "danmnet_l2.json", "tenantnetwork.json", "clusternetwork.json"],
    "TenantNetwork": ["tenantnetwork.json", "danmnet.json"],
    "ClusterNetwork": ["clusternetwork.json", "danmnet_l2.json"],
    "TenantConfig": ["tenantconfig.json"],
    "DanmEp": ["danmep.json", "danmep_sriov.json"],
}


def crd_schemas() -> dict[str, dict[str, Any]]:
    schemas = {}
    for path in CRD_FILES:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        schemas[document["spec"]["names"]["kind"]] = document["spec"]["versions"][0]["schema"][
            "openAPIV3Schema"
        ]
    return schemas


SCHEMAS = crd_schemas()
DANMNET = SCHEMAS["DanmNet"]


def danmnet(**options: Any) -> dict[str, Any]:
    return {
        "apiVersion": "danm.io/v1",
        "kind": "DanmNet",
        "metadata": {"name": "n", "namespace": "default"},
        "spec": {"NetworkID": "n", "NetworkType": "ipvlan", "Options": options},
    }


def fields(causes: list[FieldCause]) -> list[str]:
    return [cause.field for cause in causes]


def as_dicts(causes: list[FieldCause]) -> list[dict[str, str]]:
    return [cause.as_status_cause() for cause in causes]


def wrap(spec_schema: dict[str, Any], **root: Any) -> dict[str, Any]:
    """A CRD root schema whose spec is ``spec_schema``."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
        },
    }
    schema.update(root)
    return schema


def obj(spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Foo", "metadata": {"name": "x"}, "spec": spec}


# --- danm's own CRDs and fixtures


def test_all_five_crds_are_loaded() -> None:
    assert set(SCHEMAS) == set(FIXTURES_BY_KIND)


@pytest.mark.parametrize("kind", sorted(FIXTURES_BY_KIND))
def test_danm_schemas_are_structural(kind: str) -> None:
    assert structural_errors(SCHEMAS[kind]) == []


@pytest.mark.parametrize("kind", sorted(FIXTURES_BY_KIND))
def test_fixtures_are_valid_and_survive_pruning_and_defaulting(kind: str) -> None:
    for name in FIXTURES_BY_KIND[kind]:
        fixture = load_fixture(name)
        pristine = copy.deepcopy(fixture)
        assert validate(SCHEMAS[kind], fixture) == [], name
        pruned, unknown = prune(SCHEMAS[kind], fixture)
        assert unknown == [], name
        assert pruned == fixture, name
        assert apply_defaults(SCHEMAS[kind], fixture) == fixture, name
        assert fixture == pristine, name


def test_cidr_out_of_range_is_refused_on_its_field() -> None:
    causes = validate(DANMNET, danmnet(cidr="10.0.0.0/33"))
    assert causes, "a /33 IPv4 network must be refused"
    assert set(fields(causes)) == {"spec.Options.cidr"}
    assert as_dicts(causes) == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "10.0.0.0/33": "spec.Options.cidr" must validate at least one schema (anyOf)',
            "field": "spec.Options.cidr",
        },
        {
            # the branch that got furthest (format cidr, its pattern matched) explains why
            "reason": "FieldValueTypeInvalid",
            "message": 'Invalid value: "10.0.0.0/33": spec.Options.cidr in body must be of type cidr: "10.0.0.0/33"',
            "field": "spec.Options.cidr",
        },
    ]


@pytest.mark.parametrize(
    "options",
    [
        {"cidr": ""},
        {"cidr": "10.0.0.0/24"},
        {"cidr": "10.0.0.5/24"},  # host bits set: Go's ParseCIDR accepts it
        {"cidr": "010.0.0.0/24"},  # leading zeros: kube parses IPv4 sloppily
        {"net6": "2001:db8::/64"},
        {"allocation_pool": {"start": "10.0.0.1", "end": "10.0.0.9", "lastIp": "10.0.0.5/24"}},
        {"allocation_pool": {"start": "", "end": "", "lastIp": ""}},
        {
            "allocation_pool_v6": {
                "cidr": "2001:db8::/105",
                "start": "2001:db8::1",
                "end": "",
                "lastIp": "2001:db8::5/64",
            }
        },
        {"vlan": 1, "rt_tables": 0},
        {"vlan": 4094, "rt_tables": 255, "vxlan": 16777214},
        {"vlan": 7.0},  # an integral JSON number is an integer
        {"routes": {"10.1.0.0/16": "10.0.0.1"}},
    ],
)
def test_accepted_options(options: dict[str, Any]) -> None:
    assert validate(DANMNET, danmnet(**options)) == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"cidr": "garbage"}, "spec.Options.cidr"),
        ({"cidr": "2001:db8::/64"}, "spec.Options.cidr"),
        ({"cidr": "10.0.0.0/255.255.255.0"}, "spec.Options.cidr"),
        ({"net6": "10.0.0.0/24"}, "spec.Options.net6"),
        ({"allocation_pool": {"start": "10.0.0.1/24"}}, "spec.Options.allocation_pool.start"),
        ({"allocation_pool": {"lastIp": "2001:db8::1"}}, "spec.Options.allocation_pool.lastIp"),
        ({"allocation_pool_v6": {"start": "10.0.0.1"}}, "spec.Options.allocation_pool_v6.start"),
        ({"vlan": 0}, "spec.Options.vlan"),
        ({"vlan": 4095}, "spec.Options.vlan"),
        ({"vlan": 1.5}, "spec.Options.vlan"),
        ({"vlan": True}, "spec.Options.vlan"),
        ({"vxlan": 16777215}, "spec.Options.vxlan"),
        ({"rt_tables": 256}, "spec.Options.rt_tables"),
        ({"routes": {"10.1.0.0/16": 5}}, "spec.Options.routes.10.1.0.0/16"),
    ],
)
def test_refused_options(options: dict[str, Any], field: str) -> None:
    causes = validate(DANMNET, danmnet(**options))
    assert causes
    assert set(fields(causes)) == {field}


def test_failing_any_of_explains_with_the_branch_that_got_furthest() -> None:
    # start: anyOf [maxLength 0, format ipv4]; the ipv4 branch is the informative one
    causes = validate(DANMNET, danmnet(allocation_pool={"start": "10.0.0.1/24"}))
    assert [cause.message for cause in causes] == [
        'Invalid value: "10.0.0.1/24": "spec.Options.allocation_pool.start" must validate at least one schema (anyOf)',
        'Invalid value: "10.0.0.1/24": spec.Options.allocation_pool.start in body must be of type ipv4: "10.0.0.1/24"',
    ]
    # lastIp: anyOf [maxLength 0, format ipv4, format cidr + pattern]; on a tie the first such branch
    causes = validate(DANMNET, danmnet(allocation_pool={"lastIp": "2001:db8::1"}))
    assert causes[1].message == (
        'Invalid value: "2001:db8::1": spec.Options.allocation_pool.lastIp in body must be of type ipv4: "2001:db8::1"'
    )
    assert len(causes) == 2


def test_vlan_above_4094_has_kubes_message() -> None:
    assert as_dicts(validate(DANMNET, danmnet(vlan=5000))) == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 5000: spec.Options.vlan in body should be less than or equal to 4094",
            "field": "spec.Options.vlan",
        }
    ]
    assert as_dicts(validate(DANMNET, danmnet(vlan=0))) == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 0: spec.Options.vlan in body should be greater than or equal to 1",
            "field": "spec.Options.vlan",
        }
    ]


def test_wrong_type_has_kubes_message() -> None:
    assert as_dicts(validate(DANMNET, danmnet(vlan="string"))) == [
        {
            "reason": "FieldValueTypeInvalid",
            "message": 'Invalid value: "string": spec.Options.vlan in body must be of type integer: "string"',
            "field": "spec.Options.vlan",
        }
    ]
    spec_not_object = validate(DANMNET, {"apiVersion": "danm.io/v1", "kind": "DanmNet", "spec": [1]})
    assert [str(cause) for cause in spec_not_object] == [
        'spec: Invalid value: "array": spec in body must be of type object: "array"'
    ]


def test_tenantconfig_host_device_needs_a_name() -> None:
    config = load_fixture("tenantconfig.json")
    del config["hostDevices"][0]["name"]
    assert as_dicts(validate(SCHEMAS["TenantConfig"], config)) == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "hostDevices[0].name"}
    ]


def test_danmep_null_routes_stay_null() -> None:
    endpoint = load_fixture("danmep.json")
    assert endpoint["spec"]["Interface"]["proutes"] is None
    pruned, unknown = prune(SCHEMAS["DanmEp"], endpoint)
    assert unknown == []
    assert pruned["spec"]["Interface"]["proutes"] is None  # nullable: kept
    assert validate(SCHEMAS["DanmEp"], pruned) == []


def test_pruning_drops_and_reports_unknown_fields() -> None:
    network = load_fixture("danmnet.json")
    network["spec"]["unknownKey"] = {"deep": 1}
    network["spec"]["Options"]["bogus"] = "x"
    network["topLevel"] = True
    pristine = copy.deepcopy(network)
    pruned, unknown = prune(DANMNET, network)
    assert sorted(unknown) == ["spec.Options.bogus", "spec.unknownKey", "topLevel"]
    assert pruned == load_fixture("danmnet.json")
    assert network == pristine  # the input is not touched
    # the result shares nothing mutable with the input
    pruned["spec"]["Options"]["cidr"] = "changed"
    assert network["spec"]["Options"]["cidr"] != "changed"


def test_pruning_keeps_apiversion_kind_and_all_of_metadata() -> None:
    network = load_fixture("danmnet.json")
    network["metadata"]["labels"] = {"a": "b"}
    network["metadata"]["annotations"] = {"danm.io/x": "y"}
    pruned, unknown = prune(DANMNET, network)
    assert unknown == []
    assert pruned["metadata"] == network["metadata"]
    assert pruned["apiVersion"] == "danm.io/v1" and pruned["kind"] == "DanmNet"
    # even with a schema that declares none of them
    pruned, unknown = prune({"type": "object"}, network)
    assert set(pruned) == {"apiVersion", "kind", "metadata"}
    assert unknown == ["spec"]


def test_pruning_inside_array_items() -> None:
    config = load_fixture("tenantconfig.json")
    config["hostDevices"][0]["colour"] = "red"
    pruned, unknown = prune(SCHEMAS["TenantConfig"], config)
    assert unknown == ["hostDevices[0].colour"]
    assert "colour" not in pruned["hostDevices"][0]


# --- Pruning, generic


PRESERVING = wrap(
    {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {
            "known": {"type": "object", "properties": {"a": {"type": "string"}}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
)


def test_preserve_unknown_fields_keeps_unknowns_but_prunes_declared_children() -> None:
    document = obj(
        {
            "anything": {"nested": [1, {"x": None}]},
            "known": {"a": "kept", "b": "pruned"},
            "free": {"whatever": {"deep": True}},
        }
    )
    pruned, unknown = prune(PRESERVING, document)
    assert unknown == ["spec.known.b"]
    assert pruned["spec"] == {
        "anything": {"nested": [1, {"x": None}]},
        "known": {"a": "kept"},
        "free": {"whatever": {"deep": True}},
    }


def test_pruning_maps_and_nulls() -> None:
    schema = wrap(
        {
            "type": "object",
            "properties": {
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "items": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
                "plain": {"type": "string"},
                "maybe": {"type": "string", "nullable": True},
                "withDefault": {"type": "string", "default": "d"},
            },
        }
    )
    document = obj(
        {
            "labels": {"a": "1", "b": None},
            "items": [{"name": "x", "extra": 1}, None],
            "plain": None,
            "maybe": None,
            "withDefault": None,
        }
    )
    pruned, unknown = prune(schema, document)
    assert unknown == ["spec.items[0].extra"]
    # non-nullable nulls without a default go; nullable ones, defaulted ones and array items stay
    assert pruned["spec"] == {
        "labels": {"a": "1"},
        "items": [{"name": "x"}, None],
        "maybe": None,
        "withDefault": None,
    }
    assert apply_defaults(schema, pruned)["spec"]["withDefault"] == "d"


def test_pruning_embedded_resources() -> None:
    schema = wrap(
        {
            "type": "object",
            "properties": {
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}},
                }
            },
        }
    )
    template = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"a": "x", "b": "y"},
        "c": 1,
    }
    pruned, unknown = prune(schema, obj({"template": template}))
    assert sorted(unknown) == ["spec.template.c", "spec.template.spec.b"]
    assert pruned["spec"]["template"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"a": "x"},
    }
    assert validate(schema, pruned) == []
    missing = validate(schema, obj({"template": {"kind": ""}}))
    assert [str(cause) for cause in missing] == [
        "spec.template.apiVersion: Required value: must not be empty",
        'spec.template.kind: Invalid value: "": must not be empty',
    ]


# --- Defaulting


DEFAULTING = wrap(
    {
        "type": "object",
        "properties": {
            "replicas": {"type": "integer", "default": 1},
            "mode": {"type": "string", "default": "fast"},
            "nullable": {"type": "string", "nullable": True, "default": "n"},
            "ports": {
                "type": "array",
                "items": {
                    "type": "object",
                    "default": {"port": 80},
                    "properties": {
                        "port": {"type": "integer"},
                        "protocol": {"type": "string", "default": "TCP"},
                    },
                },
            },
            "limits": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "default": {},
                    "properties": {"max": {"type": "integer", "default": 10}},
                },
            },
            "nested": {
                "type": "object",
                "default": {},
                "properties": {"inner": {"type": "string", "default": "deep"}},
            },
        },
    }
)


def test_defaults_fill_absent_fields_recursively() -> None:
    document = obj({"ports": [{"port": 53}, None], "limits": {"cpu": {}, "mem": None}, "nullable": None})
    pristine = copy.deepcopy(document)
    defaulted = apply_defaults(DEFAULTING, document)
    assert document == pristine
    assert defaulted["spec"] == {
        "replicas": 1,
        "mode": "fast",
        "nullable": None,  # nullable: null is a value, not an absence
        # a null item or map value takes the default as it is (kube does not default inside it)...
        "ports": [{"port": 53, "protocol": "TCP"}, {"port": 80}],
        "limits": {"cpu": {"max": 10}, "mem": {}},
        # ...while a property's default is defaulted in turn
        "nested": {"inner": "deep"},
    }
    assert validate(DEFAULTING, defaulted) == []


def test_defaults_do_not_override_values_or_touch_metadata() -> None:
    document = obj({"replicas": 0, "mode": "", "nested": {"inner": "mine"}})
    defaulted = apply_defaults(DEFAULTING, document)
    assert defaulted["spec"]["replicas"] == 0
    assert defaulted["spec"]["mode"] == ""
    assert defaulted["spec"]["nested"] == {"inner": "mine"}
    assert defaulted["metadata"] == {"name": "x"}
    # the default is copied, never shared between objects
    first = apply_defaults(DEFAULTING, obj({}))
    first["spec"]["nested"]["inner"] = "changed"
    assert apply_defaults(DEFAULTING, obj({}))["spec"]["nested"]["inner"] == "deep"


def test_defaults_stay_out_of_root_metadata() -> None:
    # kube reduces a root metadata schema to name/generateName constraints, defaults dropped
    schema = wrap({"type": "object", "properties": {"a": {"type": "string", "default": "x"}}})
    schema["properties"]["metadata"] = {
        "type": "object",
        "properties": {"name": {"type": "string", "default": "unnamed"}},
    }
    defaulted = apply_defaults(schema, {"metadata": {}, "spec": {}})
    assert defaulted == {"metadata": {}, "spec": {"a": "x"}}


def test_defaults_replace_non_nullable_nulls() -> None:
    defaulted = apply_defaults(DEFAULTING, obj({"mode": None, "replicas": None}))
    assert defaulted["spec"]["mode"] == "fast"
    assert defaulted["spec"]["replicas"] == 1


# --- Validation, generic cases from the Kubernetes documentation


INT_OR_STRING = wrap(
    {
        "type": "object",
        "properties": {
            "port": {
                "x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
            }
        },
    }
)


@pytest.mark.parametrize("port", [8080, "http", "50%"])
def test_int_or_string_accepts(port: Any) -> None:
    assert structural_errors(INT_OR_STRING) == []
    assert validate(INT_OR_STRING, obj({"port": port})) == []


def test_int_or_string_refuses_others() -> None:
    causes = validate(INT_OR_STRING, obj({"port": True}))
    assert causes[0].as_status_cause() == {
        "reason": "FieldValueTypeInvalid",
        "message": 'Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"',
        "field": "spec.port",
    }
    assert set(fields(causes)) == {"spec.port"}


def test_nullable() -> None:
    schema = wrap(
        {
            "type": "object",
            "properties": {"a": {"type": "string", "nullable": True}, "b": {"type": "string"}},
        }
    )
    assert validate(schema, obj({"a": None})) == []
    assert as_dicts(validate(schema, obj({"b": None}))) == [
        {
            "reason": "FieldValueTypeInvalid",
            "message": 'Invalid value: "null": spec.b in body must be of type string: "null"',
            "field": "spec.b",
        }
    ]


def test_enum() -> None:
    schema = wrap(
        {
            "type": "object",
            "properties": {
                "color": {"type": "string", "enum": ["red", "green"]},
                "size": {"type": "integer", "enum": [1, 2]},
            },
        }
    )
    assert validate(schema, obj({"color": "red", "size": 2.0})) == []
    assert as_dicts(validate(schema, obj({"color": "blue", "size": 3}))) == [
        {
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: "blue": supported values: "red", "green"',
            "field": "spec.color",
        },
        {
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: 3: supported values: "1", "2"',
            "field": "spec.size",
        },
    ]


def test_bad_values_are_quoted_like_go() -> None:
    schema = wrap({"type": "object", "properties": {"e": {"type": "string", "enum": ["a"]}}})
    assert [cause.message for cause in validate(schema, obj({"e": 'q"\x01é\t'}))] == [
        'Unsupported value: "q\\"\\x01é\\t": supported values: "a"'
    ]


def test_required() -> None:
    schema = wrap(
        {"type": "object", "required": ["name", "port"], "properties": {"name": {"type": "string"}}}
    )
    schema["required"] = ["spec"]
    assert as_dicts(validate(schema, obj({"name": "x"}))) == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.port"}
    ]
    assert as_dicts(validate(schema, {"apiVersion": "example.com/v1", "kind": "Foo"})) == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec"}
    ]


def test_maps_with_additional_properties() -> None:
    schema = wrap(
        {
            "type": "object",
            "properties": {
                "weights": {
                    "type": "object",
                    "additionalProperties": {"type": "integer", "minimum": 0},
                    "maxProperties": 2,
                },
                "closed": {"type": "object", "additionalProperties": False},
            },
        }
    )
    assert structural_errors(schema) == []
    assert validate(schema, obj({"weights": {"a": 1, "b": 0}, "closed": {}})) == []
    assert [str(cause) for cause in validate(schema, obj({"weights": {"a": -1}}))] == [
        "spec.weights.a: Invalid value: -1: spec.weights.a in body should be greater than or equal to 0"
    ]
    assert as_dicts(validate(schema, obj({"weights": {"a": 1, "b": 2, "c": 3}}))) == [
        {
            "reason": "FieldValueTooMany",
            "message": "Too many: 3: must have at most 2 items",
            "field": "spec.weights",
        }
    ]
    # additionalProperties: false keeps the key through pruning so that validation refuses it
    pruned, unknown = prune(schema, obj({"closed": {"x": 1}}))
    assert unknown == []
    assert [str(cause) for cause in validate(schema, pruned)] == [
        'spec.closed: Invalid value: "x": spec.closed.x in body is a forbidden property'
    ]


STRINGS = wrap(
    {
        "type": "object",
        "properties": {
            "short": {"type": "string", "maxLength": 3},
            "long": {"type": "string", "minLength": 2},
            "prefixed": {"type": "string", "pattern": "^a"},
            "anchored": {"type": "string", "pattern": "^[a-z]+$"},
            "digits": {"type": "string", "pattern": "^\\d+$"},
        },
    }
)


def test_string_constraints() -> None:
    assert validate(STRINGS, obj({"short": "äöü", "long": "ab", "prefixed": "abc", "anchored": "abc"})) == []
    assert [
        str(cause) for cause in validate(STRINGS, obj({"short": "abcd", "long": "a", "prefixed": "xbc"}))
    ] == [
        "spec.short: Too long: may not be more than 3 bytes",
        'spec.long: Invalid value: "a": spec.long in body should be at least 2 chars long',
        "spec.prefixed: Invalid value: \"xbc\": spec.prefixed in body should match '^a'",
    ]
    assert validate(STRINGS, obj({"short": "abcd"}))[0].reason == "FieldValueTooLong"


def test_pattern_follows_re2_not_python() -> None:
    # RE2's $ is the end of the text: no match before a trailing newline (Python's $ would)
    assert [cause.message for cause in validate(STRINGS, obj({"anchored": "abc\n"}))] == [
        "Invalid value: \"abc\\n\": spec.anchored in body should match '^[a-z]+$'"
    ]
    # \d is ASCII only
    assert validate(STRINGS, obj({"digits": "123"})) == []
    assert fields(validate(STRINGS, obj({"digits": "١٢٣"}))) == ["spec.digits"]
    named = wrap(
        {"type": "object", "properties": {"x": {"type": "string", "pattern": "^(?<word>[[:alpha:]]+)\\z"}}}
    )
    assert structural_errors(named) == []
    assert validate(named, obj({"x": "abc"})) == []
    assert fields(validate(named, obj({"x": "ab1"}))) == ["spec.x"]


NUMBERS = wrap(
    {
        "type": "object",
        "properties": {
            "even": {"type": "integer", "multipleOf": 2},
            "half": {"type": "number", "multipleOf": 0.5},
            "positive": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
            "small": {"type": "number", "maximum": 10},
            "port": {"type": "integer", "format": "int32"},
            "big": {"type": "integer", "format": "int64"},
        },
    }
)


def test_number_constraints() -> None:
    assert validate(NUMBERS, obj({"even": 4, "half": 1.5, "positive": 0.1, "small": 10, "big": 2**62})) == []
    assert [str(cause) for cause in validate(NUMBERS, obj({"even": 3, "half": 0.7, "positive": 0}))] == [
        "spec.even: Invalid value: 3: spec.even in body should be a multiple of 2",
        "spec.half: Invalid value: 0.7: spec.half in body should be a multiple of 0.5",
        "spec.positive: Invalid value: 0: spec.positive in body should be greater than 0",
    ]
    # floats print the way Go's %v does
    assert [str(cause) for cause in validate(NUMBERS, obj({"small": 1e6}))] == [
        "spec.small: Invalid value: 1e+06: spec.small in body should be less than or equal to 10"
    ]
    assert fields(validate(NUMBERS, obj({"port": 2**31}))) == ["spec.port"]
    assert validate(NUMBERS, obj({"port": 2**31 - 1})) == []
    # beyond int64 a JSON number is no integer
    assert [cause.message for cause in validate(NUMBERS, obj({"big": 2**63}))] == [
        'Invalid value: "number": spec.big in body must be of type integer: "number"'
    ]


def test_arrays() -> None:
    schema = wrap(
        {
            "type": "object",
            "properties": {
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
                "unique": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
            },
        }
    )
    assert validate(schema, obj({"tags": ["a"], "unique": [1, 2]})) == []
    assert [str(cause) for cause in validate(schema, obj({"tags": [], "unique": [1, 1.0]}))] == [
        "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items",
        'spec.unique: Invalid value: "": spec.unique in body shouldn\'t contain duplicates',
    ]
    assert as_dicts(validate(schema, obj({"tags": ["a", "b", 5]}))) == [
        {
            "reason": "FieldValueTypeInvalid",
            "message": 'Invalid value: "integer": spec.tags[2] in body must be of type string: "integer"',
            "field": "spec.tags[2]",
        },
        {
            "reason": "FieldValueTooMany",
            "message": "Too many: 3: must have at most 2 items",
            "field": "spec.tags",
        },
    ]


@pytest.mark.parametrize(
    ("format_name", "good", "bad"),
    [
        ("ipv4", ["10.0.0.1", "010.000.000.001"], ["10.0.0", "10.0.0.256", "2001:db8::1", "", "10.0.0.1/8"]),
        ("ipv6", ["2001:db8::1", "::", "::ffff:10.0.0.1"], ["10.0.0.1", "fe80::1%eth0", "2001:db8:::1", ""]),
        (
            "cidr",
            ["10.0.0.0/8", "2001:db8::/32", "0.0.0.0/0"],
            ["10.0.0.0", "10.0.0.0/33", "2001:db8::/129", "a/8"],
        ),
        ("date", ["2024-02-29", "1999-12-31"], ["2023-02-29", "2024-1-1", "20240101", "2024-13-01"]),
        (
            "date-time",
            ["2024-05-01T10:00:00Z", "2024-05-01t10:00:00.123+02:00"],
            ["2024-05-01", "2024-05-01T24:00:00Z", "2024-05-01T10:00:00", "2024-05-01 10:00:00Z"],
        ),
        ("byte", ["aGVsbG8=", "YWJj"], ["", "not base64", "YWJ"]),
        (
            "uuid",
            ["123e4567-e89b-12d3-a456-426614174000", "123E4567E89B12D3A456426614174000"],
            ["123", "xyz"],
        ),
        (
            "mac",
            ["01:23:45:67:89:ab", "01-23-45-67-89-AB", "0123.4567.89ab"],
            ["01:23:45:67:89", "01:23-45:67:89:ab"],
        ),
    ],
)
def test_formats(format_name: str, good: list[str], bad: list[str]) -> None:
    schema = wrap({"type": "object", "properties": {"x": {"type": "string", "format": format_name}}})
    for value in good:
        assert validate(schema, obj({"x": value})) == [], value
    for value in bad:
        causes = validate(schema, obj({"x": value}))
        assert [cause.message for cause in causes] == [
            f'Invalid value: "{value}": spec.x in body must be of type {format_name}: "{value}"'
        ], value


def test_unknown_formats_are_ignored() -> None:
    schema = wrap({"type": "object", "properties": {"x": {"type": "string", "format": "no-such-format"}}})
    assert validate(schema, obj({"x": "anything"})) == []


def test_one_of_all_of_not() -> None:
    schema = wrap(
        {
            "type": "object",
            "properties": {
                "one": {"type": "integer", "oneOf": [{"minimum": 0}, {"maximum": 10}]},
                "all": {"type": "string", "allOf": [{"minLength": 2}, {"pattern": "^a"}]},
                "neither": {"type": "string", "not": {"enum": ["forbidden"]}},
            },
        }
    )
    assert validate(schema, obj({"one": 20, "all": "ab", "neither": "ok"})) == []
    assert [str(cause) for cause in validate(schema, obj({"one": 5}))] == [
        'spec.one: Invalid value: 5: "spec.one" must validate one and only one schema (oneOf). Found 2 valid alternatives'
    ]
    assert [str(cause) for cause in validate(schema, obj({"all": "b", "neither": "forbidden"}))] == [
        'spec.all: Invalid value: "b": spec.all in body should be at least 2 chars long',
        "spec.all: Invalid value: \"b\": spec.all in body should match '^a'",
        'spec.all: Invalid value: "b": "spec.all" must validate all the schemas (allOf). None validated',
        'spec.neither: Invalid value: "forbidden": "spec.neither" must not validate the schema (not)',
    ]


def test_root_metadata_is_left_to_the_server_except_name() -> None:
    schema = wrap(
        {"type": "object"},
    )
    schema["properties"]["metadata"] = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 5}},
    }
    assert structural_errors(schema) == []
    # ObjectMeta fields are not the schema's business, even though metadata declares no properties
    assert validate(schema, {"metadata": {"name": "short", "labels": {"a": "b"}, "generation": 1}}) == []
    assert fields(validate(schema, {"metadata": {"name": "toolong"}})) == ["metadata.name"]
    assert fields(validate(SCHEMAS["DanmNet"], {"metadata": "nope"})) == ["metadata"]


def test_field_cause_renders_like_kube() -> None:
    cause = FieldCause("FieldValueRequired", "Required value", "spec.x")
    assert str(cause) == "spec.x: Required value"
    assert cause.as_status_cause() == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.x",
    }
    assert cause == FieldCause("FieldValueRequired", "Required value", "spec.x")
    assert cause != FieldCause("FieldValueRequired", "Required value", "spec.y")


def test_malformed_schema_raises_a_danm_error() -> None:
    with pytest.raises(SchemaError):
        validate({"type": "object", "properties": {"spec": "string"}}, {"spec": "x"})
    with pytest.raises(SchemaError):
        prune(["not", "a", "schema"], {})


# --- Structural schema checks


def broken(**node: Any) -> dict[str, Any]:
    return wrap({"type": "object", "properties": {"x": node}})


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (
            broken(properties={"a": {"type": "string"}}),
            "properties[spec].properties[x].type: Required value: must not be empty for specified object fields",
        ),
        (
            broken(type="array"),
            "properties[spec].properties[x].items: Required value: must be specified",
        ),
        (
            broken(type="array", items={}),
            "properties[spec].properties[x].items.type: Required value: must not be empty for specified array items",
        ),
        (
            broken(type="string", anyOf=[{"type": "string", "maxLength": 1}]),
            "properties[spec].properties[x].anyOf[0].type: Forbidden: must be empty to be structural",
        ),
        (
            broken(type="string", oneOf=[{"default": "a"}]),
            "properties[spec].properties[x].oneOf[0].default: Forbidden: must be undefined to be structural",
        ),
        (
            broken(type="string", allOf=[{"description": "d"}]),
            "properties[spec].properties[x].allOf[0].description: Forbidden: must be empty to be structural",
        ),
        (
            broken(type="string", **{"not": {"nullable": True}}),
            "properties[spec].properties[x].not.nullable: Forbidden: must be false to be structural",
        ),
        (
            broken(type="object", anyOf=[{"additionalProperties": {"type": "string"}}]),
            "properties[spec].properties[x].anyOf[0].additionalProperties: Forbidden: must be undefined to be structural",
        ),
        (
            broken(type="string", anyOf=[{"x-kubernetes-int-or-string": True}]),
            "properties[spec].properties[x].anyOf[0].x-kubernetes-int-or-string: Forbidden: must be false to be structural",
        ),
        (
            broken(
                type="object", properties={"a": {"type": "string"}}, additionalProperties={"type": "string"}
            ),
            "properties[spec].properties[x].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
        ),
        (
            broken(type="object", anyOf=[{"properties": {"undeclared": {"minLength": 1}}}]),
            "properties[spec].properties[x].properties[undeclared]: Required value: "
            "because it is defined in properties[spec].properties[x].anyOf[0].properties[undeclared]",
        ),
        (
            broken(type="string", pattern="(?=lookahead)"),
            'properties[spec].properties[x].pattern: Invalid value: "(?=lookahead)": must be a valid regular expression',
        ),
        (
            broken(type="string", format="cidr", default="not-a-cidr"),
            'properties[spec].properties[x].default: Invalid value: "not-a-cidr":  in body must be of type cidr',
        ),
        (
            broken(type="foo"),
            'properties[spec].properties[x].type: Unsupported value: "foo": supported values: "array", "boolean"',
        ),
        (
            broken(type="array", items={"type": "string"}, uniqueItems=True),
            "properties[spec].properties[x].uniqueItems: Forbidden: uniqueItems cannot be set to true",
        ),
        (
            broken(**{"$ref": "#/definitions/x"}),
            "properties[spec].properties[x].$ref: Forbidden: $ref is not supported",
        ),
        (
            wrap({"type": "object"}, additionalProperties={"type": "string"}),
            "additionalProperties: Forbidden: must not be used at the root",
        ),
        (
            {"type": "string"},
            'type: Invalid value: "string": must be object at the root',
        ),
        (
            {"properties": {"spec": {"type": "object"}}},
            "type: Required value: must not be empty at the root",
        ),
        (
            {
                "type": "object",
                "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}},
            },
            "properties[metadata]: Forbidden: must not specify anything other than name and generateName",
        ),
        (
            {"type": "object", "properties": {"kind": {"type": "integer"}}},
            'properties[kind].type: Invalid value: "integer": must be string',
        ),
        (
            broken(type="object", **{"x-kubernetes-embedded-resource": True}),
            "properties[spec].properties[x].properties: Required value: must not be empty if "
            "x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ),
        (
            broken(
                type="object",
                anyOf=[{"properties": {"metadata": {"minProperties": 1}}}],
                properties={"metadata": {"type": "object"}},
            ),
            "properties[spec].properties[x].anyOf[0].properties[metadata]: Forbidden: must not be specified in a nested context",
        ),
    ],
)
def test_broken_schemas_are_reported(schema: dict[str, Any], expected: str) -> None:
    errors = structural_errors(schema)
    assert any(error.startswith(expected) for error in errors), errors


def test_structural_exceptions_are_accepted() -> None:
    schema = wrap(
        {
            "type": "object",
            "properties": {
                "free": {"x-kubernetes-preserve-unknown-fields": True},
                "port": {
                    "x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                },
                "both": {
                    "x-kubernetes-int-or-string": True,
                    "allOf": [
                        {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                        {"pattern": "^[0-9]+%?$"},
                    ],
                },
                "constrained": {
                    "type": "object",
                    "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                    "oneOf": [
                        {"required": ["a"]},
                        {"required": ["b"]},
                        {"properties": {"a": {"minLength": 2}}},
                    ],
                },
                "defaulted": {"type": "string", "default": "10.0.0.0/8", "format": "cidr"},
            },
        }
    )
    schema["properties"]["metadata"] = {
        "type": "object",
        "properties": {"name": {"type": "string", "pattern": "^[a-z]+$"}, "generateName": {"type": "string"}},
    }
    assert structural_errors(schema) == []


def test_structural_errors_prefix_and_causes() -> None:
    schema = broken(properties={"a": {"type": "string"}})
    root = "spec.versions[0].schema.openAPIV3Schema"
    causes = structural_causes(schema, root)
    assert as_dicts(causes) == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value: must not be empty for specified object fields",
            "field": f"{root}.properties[spec].properties[x].type",
        }
    ]
    assert structural_errors(schema, root) == [str(causes[0])]
    # several violations come back sorted, like kube's
    several = structural_errors(wrap({"properties": {"b": {}, "a": {}}}))
    assert several == sorted(several) and len(several) == 3
