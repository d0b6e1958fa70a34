"""The pieces of delegation that need no API server: names, versions, environments, configs."""

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from danm import cni, delegate, delegconf
from danm.types import InterfaceRequest, Network, NetworkOptions, NetworkSpec


@pytest.mark.parametrize("name", ["macvlan", "sriov-dp_1.2", "A-b"])
def test_safe_names(name: str) -> None:
    delegate.check_name("NetworkType", name)


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", "a b", "x\n", "é"])
def test_unsafe_names(name: str) -> None:
    with pytest.raises(cni.CniFailure) as caught:
        delegate.check_name("NetworkID", name)
    assert caught.value.code == cni.ERR_INVALID_CONFIG and "NetworkID" in caught.value.msg


def test_binaries_are_found_in_cni_path_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for directory in (first, second):
        directory.mkdir()
        plugin = directory / "p"
        plugin.write_text("#!/bin/sh\n")
        plugin.chmod(0o755)
    (first / "p").chmod(0o644)  # not executable: skipped
    assert delegate.find_binary("p", f"{first}::{second}") == str(second / "p")
    with pytest.raises(cni.CniFailure) as caught:
        delegate.find_binary("q", str(first))
    assert caught.value.code == cni.ERR_DELEGATE and "q" in caught.value.msg


def test_best_version() -> None:
    assert delegate.best_version(["0.3.1", "0.4.0", "1.0.0"]) == "1.0.0"
    assert delegate.best_version(["0.1.0", "0.2.0"]) == "0.2.0"
    assert delegate.best_version(["2.0.0"]) == ""
    assert delegate.best_version(["0.3.1", "1.1.0"], ceiling="1.0.0") == "0.3.1"


def test_delegate_environment_keeps_the_runtime_args() -> None:
    env = delegate.delegate_environment(
        {"CNI_ARGS": "K8S_POD_NAME=p;K8S_POD_NAMESPACE=n", "PATH": "/bin"}, "ADD", "ext1", {"CNI_NETNS": "/x"}
    )
    assert env["CNI_ARGS"] == "IgnoreUnknown=1;K8S_POD_NAME=p;K8S_POD_NAMESPACE=n"
    assert (env["CNI_COMMAND"], env["CNI_IFNAME"], env["CNI_NETNS"], env["PATH"]) == ("ADD", "ext1", "/x", "/bin")
    kept = delegate.delegate_environment({"CNI_ARGS": "IgnoreUnknown=true;A=b"}, "DEL", "eth0")
    assert kept["CNI_ARGS"] == "IgnoreUnknown=true;A=b"


def test_versions_are_cached_per_binary_and_threads_do_not_collide(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    plugin = tmp_path / "plugin"
    plugin.write_text(
        f"#!/bin/sh\necho x >> {calls}\necho '{{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.4.0\",\"1.0.0\"]}}'\n"
    )
    plugin.chmod(0o755)
    cache = tmp_path / "cache"
    answers: list[list[str]] = []

    def ask() -> None:
        answers.append(delegate.supported_versions(str(plugin), {"PATH": "/bin:/usr/bin"}, str(cache), time.monotonic() + 10))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [["0.4.0", "1.0.0"]] * 6
    before = len(calls.read_text().splitlines())
    ask()
    assert len(calls.read_text().splitlines()) == before  # answered from the cache
    plugin.write_text(plugin.read_text() + "# changed\n")  # a new binary is asked again
    ask()
    assert len(calls.read_text().splitlines()) == before + 1
    assert not list(cache.glob("*.tmp"))


def network(network_type: str, **options: object) -> Network:
    import msgspec

    return Network(spec=NetworkSpec(network_id="n1", network_type=network_type, options=msgspec.convert(options, NetworkOptions)))


def test_which_addresses_danm_allocates_for_a_delegate() -> None:
    dynamic = network("macvlan", cidr="10.0.0.0/24")
    assert delegconf.danm_allocates(dynamic, InterfaceRequest(ip="dynamic", ip6="none")) == ("dynamic", "none")
    static = network("bridge", cidr="10.0.0.0/24")
    assert delegconf.danm_allocates(static, InterfaceRequest(ip="dynamic", ip6="dynamic")) == ("dynamic", "")
    assert delegconf.danm_allocates(static, InterfaceRequest(ip="none")) == ("", "")
    assert delegconf.strips_ipam(InterfaceRequest(ip="none"), "", "")
    assert not delegconf.strips_ipam(InterfaceRequest(ip="none"), "10.0.0.5/24", "")
    assert [delegconf.backend(t) for t in ("", "IPVLAN", "MacVlan", "sriov", "bridge")] == [
        "builtin", "builtin", "dynamic", "dynamic", "static"
    ]


def test_conflist_ipam_is_replaced_where_it_was_or_on_the_first_plugin() -> None:
    plugins: list[dict[str, Any]] = [{"type": "bridge", "ipam": {"type": "host-local"}}, {"type": "portmap"}]
    ours: dict[str, Any] = {"type": "fakeipam", "ips": []}
    assert delegconf.with_ipam(plugins, ours, strip=False)[0]["ipam"] == ours
    assert "ipam" not in delegconf.with_ipam(plugins, ours, strip=False)[1]
    assert delegconf.with_ipam([{"type": "a"}, {"type": "b"}], ours, strip=False)[0]["ipam"] == ours
    assert all("ipam" not in p for p in delegconf.with_ipam(plugins, None, strip=True))
    assert plugins[0]["ipam"] == {"type": "host-local"}  # copies, the input is untouched
    config = delegconf.plugin_config(
        {"type": "portmap", "capabilities": {"portMappings": True, "bandwidth": False}, "prevResult": "stale"},
        "chain", "1.0.0", {"portMappings": [1], "bandwidth": {"x": 1}}, None,
    )
    assert config["runtimeConfig"] == {"portMappings": [1]} and "prevResult" not in config
    assert json.dumps(config["name"]) == '"chain"'
