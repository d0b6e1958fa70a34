"""The one `danm` binary: role dispatch by program name, environment and subcommand."""

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from danm import cni, fakeipam
from danm.types import CniErrorReply, VersionReply
from testlib import clean_env, danm_binary

ROLES = ["cni", "fakeipam", "netwatcher", "svcwatcher", "webhook", "apiserver", "demo", "ipam", "version"]


def run(argv: list[str], env: dict[str, str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, env=env, input=stdin, capture_output=True, timeout=60, check=False)


def test_help_lists_every_role() -> None:
    done = run([str(danm_binary()), "--help"], clean_env(COLUMNS="200"))
    assert done.returncode == 0, done.stderr
    listed = done.stdout.decode()
    for role in ROLES:
        assert f" {role} " in listed, role


def test_version_command() -> None:
    done = run([str(danm_binary()), "version"], clean_env())
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    import danm

    assert lines[0] == f"danm {danm.__version__}"
    commit = lines[1].removeprefix("commit: ")
    assert len(commit) == 40 and all(c in "0123456789abcdef" for c in commit), lines[1]
    assert lines[2].startswith(f"python: {sys.version.split()[0]}")
    assert lines[3] == "cni versions: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0"


def test_cni_version_with_no_arguments() -> None:
    done = run([str(danm_binary())], clean_env(CNI_COMMAND="VERSION"), b'{"cniVersion":"1.1.0"}')
    assert done.returncode == 0 and done.stderr == b""
    reply = msgspec.json.decode(done.stdout, type=VersionReply)
    assert reply.supported_versions == ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


def test_precomputed_version_reply_matches_the_model() -> None:
    typed = VersionReply(cni_version=cni.LATEST_SPEC_VERSION, supported_versions=list(cni.SPEC_VERSIONS))
    assert cni.VERSION_REPLY == msgspec.json.encode(typed)


@pytest.mark.parametrize("command", ["BOGUS", "add", ""])
def test_unknown_cni_command_is_error_code_4(command: str) -> None:
    done = run([str(danm_binary())], clean_env(CNI_COMMAND=command), b"{}")
    assert done.returncode != 0
    error = msgspec.json.decode(done.stdout, type=CniErrorReply)
    assert error.code == 4 and repr(command) in error.msg


def test_cni_subcommand_is_the_plugin_too() -> None:
    done = run([str(danm_binary()), "cni"], clean_env(CNI_COMMAND="VERSION"))
    assert done.returncode == 0 and done.stdout == cni.VERSION_REPLY


@pytest.mark.parametrize(
    ("verb", "code", "culprit"),
    [
        ("ADD", 4, "CNI_CONTAINERID"),
        ("DEL", 4, "CNI_CONTAINERID"),
        ("CHECK", 4, "CNI_CONTAINERID"),
        ("GC", 7, "cni.dev/valid-attachments"),
        ("STATUS", 50, "/nonexistent"),
    ],
)
def test_verbs_without_their_inputs_fail_cleanly(verb: str, code: int, culprit: str, tmp_path: Path) -> None:
    config = {"cniVersion": "1.1.0", "name": "n", "type": "danm", "kubeconfig": "/nonexistent", "logFile": "", "runDir": str(tmp_path)}
    done = run([str(danm_binary())], clean_env(CNI_COMMAND=verb), json.dumps(config).encode())
    assert done.returncode != 0
    error = msgspec.json.decode(done.stdout, type=CniErrorReply)
    assert error.code == code and culprit in error.msg, error


def test_fakeipam_name_wins_over_cni_command(tmp_path: Path) -> None:
    link = tmp_path / "fakeipam"
    link.symlink_to(danm_binary())
    as_fakeipam = run([str(link)], clean_env(CNI_COMMAND="VERSION"))
    as_danm = run([str(danm_binary())], clean_env(CNI_COMMAND="VERSION"))
    assert as_danm.stdout == cni.VERSION_REPLY
    # fakeipam is a different role: its answer is its own (it also speaks 0.1.0 and 0.2.0)
    assert as_fakeipam.returncode == 0
    assert as_fakeipam.stdout == fakeipam.VERSION_REPLY != as_danm.stdout


def test_fakeipam_as_a_copy(tmp_path: Path) -> None:
    """Installers copy binaries; a copy named fakeipam dispatches the same way."""
    copy = tmp_path / "fakeipam"
    copy.write_bytes(danm_binary().read_bytes())
    copy.chmod(0o755)
    done = run([str(copy)], clean_env(CNI_COMMAND="ADD"))  # no config on stdin
    error = msgspec.json.decode(done.stdout, type=CniErrorReply)
    assert done.returncode == 1 and error.code == 6 and error.msg.startswith("fakeipam: "), error


@pytest.mark.parametrize("role", ["netwatcher", "svcwatcher", "webhook", "demo"])
def test_roles_not_built_yet(role: str) -> None:
    done = run([str(danm_binary()), role], clean_env())
    assert done.returncode != 0
    assert b"not implemented yet" in done.stderr


def test_ipam_is_a_command_group() -> None:
    done = run([str(danm_binary()), "ipam", "--help"], clean_env(COLUMNS="200"))
    assert done.returncode == 0 and b"show" in done.stdout


def test_cni_path_imports_nothing_slow() -> None:
    """VERSION must not load typer, kubernetes, pyroute2, grpc or msgspec (-X importtime)."""
    done = run(
        [sys.executable, "-X", "importtime", str(danm_binary())],
        clean_env(CNI_COMMAND="VERSION"),
    )
    assert done.returncode == 0
    imported = {line.split("|")[-1].strip() for line in done.stderr.decode().splitlines()[1:]}
    assert "danm.entry" in imported  # the measurement does see danm's own imports
    for slow in ("typer", "click", "kubernetes", "pyroute2", "grpc", "msgspec", "typing", "asyncio"):
        assert not {name for name in imported if name == slow or name.startswith(slow + ".")}, slow
