"""Delegates for tests: a CNI bin directory with danm, fakeipam, recording shims in front of the
reference plugins, and small script plugins; veth parents; `ip -j` in a netns."""

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from testlib import danm_binary

REFERENCE_PLUGINS = Path("/usr/lib/cni")

_SHIM = """#!{python}
# Records one call of the {name} plugin, then becomes the real plugin with the same stdin.
import json, os, sys
data = sys.stdin.buffer.read()
try:
    config = json.loads(data) if data.strip() else None
except ValueError:
    config = data.decode(errors="replace")
entry = {{"plugin": {name!r}, "command": os.environ.get("CNI_COMMAND"), "ifname": os.environ.get("CNI_IFNAME"),
          "netns": os.environ.get("CNI_NETNS"), "args": os.environ.get("CNI_ARGS"),
          "containerid": os.environ.get("CNI_CONTAINERID"), "config": config}}
with open({record!r}, "a") as record:
    record.write(json.dumps(entry) + "\\n")
read_end, write_end = os.pipe()
os.write(write_end, data)
os.close(write_end)
os.dup2(read_end, 0)
os.execv({real!r}, [{real!r}])
"""


_FAKE = """#!{python}
# A stand-in {name} plugin: records each call and answers ADD with a fixed result.
import json, os, sys
command = os.environ.get("CNI_COMMAND")
if command == "VERSION":
    print(json.dumps({{"cniVersion": "1.0.0", "supportedVersions": {versions}}}))
    sys.exit(0)
data = sys.stdin.buffer.read()
config = json.loads(data)
entry = {{"plugin": {name!r}, "command": command, "ifname": os.environ.get("CNI_IFNAME"),
          "netns": os.environ.get("CNI_NETNS"), "args": os.environ.get("CNI_ARGS"),
          "containerid": os.environ.get("CNI_CONTAINERID"), "config": config}}
with open({record!r}, "a") as record:
    record.write(json.dumps(entry) + "\\n")
if command == "ADD":
    result = json.loads({result!r})
    result["cniVersion"] = config["cniVersion"]
    for interface in result.get("interfaces", []):
        if interface.get("name") == "placeholder":
            interface["name"] = os.environ.get("CNI_IFNAME")
        if interface.get("mac") == "from-device":  # 02:00:00:00:00:<last digit of deviceID + 1>
            interface["mac"] = "02:00:00:00:00:%02x" % (int(config["deviceID"][-1], 16) + 1)
    print(json.dumps(result))
"""


class CniBin:
    """A CNI_PATH directory put in front of the reference plugins."""

    def __init__(self, directory: Path, record: Path) -> None:
        self.directory = directory
        self.record_file = record
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("danm", "fakeipam"):
            (directory / name).symlink_to(danm_binary())

    @property
    def cni_path(self) -> str:
        return f"{self.directory}:{REFERENCE_PLUGINS}"

    def env(self) -> dict[str, str]:
        return {"CNI_PATH": self.cni_path}

    def extra_env(self) -> dict[str, str]:
        """What a runtime-like driver should add to the plugin's environment (nothing here)."""
        return {}

    def record(self, plugin: str, real: Path | None = None) -> None:
        """Put a recording shim named ``plugin`` in front of the real one."""
        target = real or REFERENCE_PLUGINS / plugin
        shim = self.directory / plugin
        shim.write_text(_SHIM.format(python=sys.executable, name=plugin, record=str(self.record_file), real=str(target)))
        shim.chmod(0o755)

    def fake(self, name: str, versions: list[str], result: dict[str, Any]) -> None:
        """A plugin that records each call (as ``record`` does) and answers ADD with ``result``
        (its cniVersion set to the config's), creating nothing."""
        text = _FAKE.format(
            python=sys.executable, name=name, record=str(self.record_file),
            versions=json.dumps(versions), result=json.dumps(result),
        )
        self.script(name, text)

    def script(self, name: str, text: str) -> None:
        path = self.directory / name
        path.write_text(text)
        path.chmod(0o755)

    def calls(self, plugin: str | None, command: str | None) -> list[dict[str, Any]]:
        if not self.record_file.exists():
            return []
        entries = [json.loads(line) for line in self.record_file.read_text().splitlines()]
        return [
            entry
            for entry in entries
            if (plugin is None or entry["plugin"] == plugin) and (command is None or entry["command"] == command)
        ]


def ip_json(netns_path: str, *args: str) -> Any:
    name = os.path.basename(netns_path)
    out = subprocess.run(["ip", "-n", name, "-j", *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out or "[]")


@contextmanager
def veth_parent(mtu: int = 1500) -> Iterator[str]:
    """A host link to be a macvlan master: one end of a veth pair, up; removed afterwards."""
    name = f"dpar{uuid.uuid4().hex[:8]}"
    peer = f"dpeer{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "link", "add", name, "mtu", str(mtu), "type", "veth", "peer", "name", peer], check=True)
    try:
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        subprocess.run(["ip", "link", "set", peer, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)
