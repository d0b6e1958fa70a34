#!/usr/bin/env python3
"""Generate deploy/crds/*.yaml: the CustomResourceDefinitions of the danm.io/v1 API.

The three network kinds share one schema, so the manifests are generated rather than edited by
hand; tests/test_crds.py fails when the committed files differ from this script's output.

Schema choices (see the reference, section 1.6):
- the original's HEAD CRDs reject every non-empty cidr/net6/pool value (a one-branch oneOf with
  maxLength 0); here each such string is "empty or valid", expressed as a structural anyOf;
- lastIp is valid bare or in CIDR form (the original writes the CIDR form); pool start/end are
  bare addresses;
- integer ranges are exactly the original's, so no object an existing cluster holds becomes
  invalid: an IPAM update of an old object must never fail with 422. Stricter rules belong in
  the webhook, on create or on changed fields.

    python scripts/gen_crds.py [--check]
"""

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

GROUP = "danm.io"
VERSION = "v1"
OUT_DIR = Path(__file__).resolve().parent.parent / "deploy" / "crds"

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
STRING_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
EMPTY: Schema = {"maxLength": 0}


def empty_or(*branches: Schema) -> Schema:
    return {"type": "string", "anyOf": [EMPTY, *branches]}


IPV4_CIDR = empty_or({"format": "cidr", "pattern": r"^\d+\."})
IPV6_CIDR = empty_or({"format": "cidr", "pattern": ":"})
IPV4_ADDRESS = empty_or({"format": "ipv4"})
IPV6_ADDRESS = empty_or({"format": "ipv6"})
IPV4_LAST = empty_or({"format": "ipv4"}, {"format": "cidr", "pattern": r"^\d+\."})
IPV6_LAST = empty_or({"format": "ipv6"}, {"format": "cidr", "pattern": ":"})


def integer(minimum: int, maximum: int) -> Schema:
    return {"type": "integer", "format": "int32", "minimum": minimum, "maximum": maximum}


NETWORK_SPEC: Schema = {
    "type": "object",
    "properties": {
        "NetworkID": STRING,
        "NetworkType": STRING,
        "AllowedTenants": {"type": "array", "items": STRING},
        "Options": {
            "type": "object",
            "properties": {
                "host_device": STRING,
                "device_pool": STRING,
                "cidr": IPV4_CIDR,
                "allocation_pool": {
                    "type": "object",
                    "properties": {"start": IPV4_ADDRESS, "end": IPV4_ADDRESS, "lastIp": IPV4_LAST},
                },
                "routes": STRING_MAP,
                "vxlan": integer(1, 16777214),
                "vlan": integer(1, 4094),
                "alloc": STRING,
                "container_prefix": STRING,
                "rt_tables": integer(0, 255),
                "net6": IPV6_CIDR,
                "routes6": STRING_MAP,
                "alloc6": STRING,
                "allocation_pool_v6": {
                    "type": "object",
                    "properties": {
                        "start": IPV6_ADDRESS,
                        "end": IPV6_ADDRESS,
                        "lastIp": IPV6_LAST,
                        "cidr": IPV6_CIDR,
                    },
                },
            },
        },
    },
}

NULLABLE_STRING_MAP: Schema = {**STRING_MAP, "nullable": True}

DANMEP_SPEC: Schema = {
    "type": "object",
    "properties": {
        "NetworkName": STRING,
        "NetworkType": STRING,
        "EndpointID": STRING,
        "Interface": {
            "type": "object",
            "properties": {
                "Name": STRING,
                "Address": STRING,
                "AddressIPv6": STRING,
                "MacAddress": STRING,
                # the original writes null when the pod asked for no policy routes
                "proutes": NULLABLE_STRING_MAP,
                "proutes6": NULLABLE_STRING_MAP,
                "DeviceID": STRING,
            },
        },
        "Host": STRING,
        "Pod": STRING,
        "PodUID": STRING,
        "CID": STRING,
        "netns": STRING,
        "apiType": STRING,
    },
}

TENANTCONFIG_FIELDS: Schema = {
    "hostDevices": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": STRING, "vniType": STRING, "vniRange": STRING, "alloc": STRING},
        },
    },
    "networkIds": STRING_MAP,
}


def column(name: str, path: str, kind: str = "string", priority: int = 0) -> Schema:
    entry: Schema = {"name": name, "type": kind, "jsonPath": path}
    if priority:
        entry["priority"] = priority
    return entry


AGE = column("Age", ".metadata.creationTimestamp", "date")

NETWORK_COLUMNS = [
    column("Type", ".spec.NetworkType"),
    column("NetworkID", ".spec.NetworkID"),
    column("CIDR", ".spec.Options.cidr"),
    column("Net6", ".spec.Options.net6"),
    column("VLAN", ".spec.Options.vlan", "integer"),
    column("VxLAN", ".spec.Options.vxlan", "integer"),
    column("HostDevice", ".spec.Options.host_device"),
    AGE,
]

DANMEP_COLUMNS = [
    column("Pod", ".spec.Pod"),
    column("Network", ".spec.NetworkName"),
    column("Interface", ".spec.Interface.Name"),
    column("Address", ".spec.Interface.Address"),
    column("AddressIPv6", ".spec.Interface.AddressIPv6"),
    column("Host", ".spec.Host"),
    AGE,
]


def object_schema(fields: Schema) -> Schema:
    return {
        "type": "object",
        "properties": {"apiVersion": STRING, "kind": STRING, "metadata": {"type": "object"}, **fields},
    }


def crd(kind: str, plural: str, scope: str, short: list[str], fields: Schema, columns: list[Schema]) -> Schema:
    version: Schema = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": object_schema(fields)},
    }
    if columns:
        version["additionalPrinterColumns"] = columns
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short,
            },
            "scope": scope,
            "versions": [version],
        },
    }


def definitions() -> dict[str, Schema]:
    network = {"spec": NETWORK_SPEC}
    return {
        "danmnets.yaml": crd("DanmNet", "danmnets", "Namespaced", ["dn", "dnet"], network, NETWORK_COLUMNS),
        "tenantnetworks.yaml": crd(
            "TenantNetwork", "tenantnetworks", "Namespaced", ["tn", "tnet"], network, NETWORK_COLUMNS
        ),
        "clusternetworks.yaml": crd(
            "ClusterNetwork", "clusternetworks", "Cluster", ["cn", "cnet"], network, NETWORK_COLUMNS
        ),
        "tenantconfigs.yaml": crd(
            "TenantConfig", "tenantconfigs", "Cluster", ["tc", "tconf"], TENANTCONFIG_FIELDS, [AGE]
        ),
        "danmeps.yaml": crd("DanmEp", "danmeps", "Namespaced", ["de", "dep"], {"spec": DANMEP_SPEC}, DANMEP_COLUMNS),
    }


class _NoAliasDumper(yaml.SafeDumper):
    """Shared sub-schemas must be written out in full: kubectl and humans read these files."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(document: Schema) -> str:
    header = "# Generated by scripts/gen_crds.py; edit that script, not this file.\n"
    return header + yaml.dump(document, Dumper=_NoAliasDumper, sort_keys=False, width=100)


def main() -> int:
    parser = argparse.ArgumentParser(description="Generate danm's CRD manifests.")
    parser.add_argument("--check", action="store_true", help="fail if the committed files differ")
    options = parser.parse_args()
    stale = []
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, document in definitions().items():
        path = OUT_DIR / name
        text = render(document)
        if options.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date: " + ", ".join(stale) + " (run scripts/gen_crds.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
