"""The original's manifests are real input: every usable file decodes, and nothing in it is lost.

schema/* are annotated templates (placeholders, not values) and are not inputs.
"""

import json
from pathlib import Path
from typing import Any

import msgspec
import yaml

from danm import types
from danm.annotation import ANNOTATION_KEY, parse_interfaces
from testlib import shared_dir

MODELS: dict[str, type[Any]] = {
    "DanmNet": types.Network,
    "TenantNetwork": types.Network,
    "ClusterNetwork": types.Network,
    "TenantConfig": types.TenantConfig,
    "DanmEp": types.DanmEp,
    "NetworkAttachmentDefinition": types.NetworkAttachmentDefinition,
}


def documents() -> list[tuple[Path, dict[str, Any]]]:
    root = shared_dir() / "danm-manifests"
    found: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(root.rglob("*.yaml")):
        if "schema" in path.relative_to(root).parts:
            continue
        try:
            loaded = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except yaml.YAMLError:
            continue  # upstream's production/TenantNetwork.yaml; see test_crds
        found.extend((path, document) for document in loaded if isinstance(document, dict))
    return found


def assert_contained(original: Any, written: Any, path: str) -> None:
    """Everything in ``original`` is in ``written`` with the same value."""
    if isinstance(original, dict):
        assert isinstance(written, dict), path
        for key, value in original.items():
            assert key in written, f"{path}.{key} lost"
            assert_contained(value, written[key], f"{path}.{key}")
    else:
        assert original == written, path


def test_danm_objects_round_trip_without_loss() -> None:
    decoded = 0
    for path, document in documents():
        model = MODELS.get(document.get("kind", ""))
        if model is None:
            continue
        value = msgspec.convert(document, model)
        written = json.loads(msgspec.json.encode(value))
        assert_contained(document, written, str(path))
        assert msgspec.convert(written, model) == value
        decoded += 1
    assert decoded >= 8


def pod_templates(document: dict[str, Any]) -> list[dict[str, Any]]:
    if document.get("kind") == "Pod":
        return [document]
    template = document.get("spec", {}).get("template")
    return [template] if isinstance(template, dict) else []


def test_every_interfaces_annotation_parses() -> None:
    parsed = 0
    for path, document in documents():
        for template in pod_templates(document):
            annotations = template.get("metadata", {}).get("annotations", {})
            if ANNOTATION_KEY in annotations:
                requests = parse_interfaces(annotations[ANNOTATION_KEY])
                assert requests, path
                parsed += 1
    assert parsed >= 6


def test_shipped_cni_config_decodes() -> None:
    path = shared_dir() / "danm-manifests" / "integration" / "cni_config" / "00-danm.conf"
    conf = msgspec.json.decode(path.read_bytes(), type=types.DanmNetConf)
    assert (conf.cni_version, conf.name, conf.type) == ("0.3.1", "meta_cni", "danm")
    assert conf.kubeconfig == "/etc/kubernetes/kubeconfig/danmc.yml"
    assert conf.cni_dir == "/etc/cni/net.d" and conf.naming_scheme == "awesome"
