"""The installed package is the compiled one: every module the build configuration compiles is
an extension module, and the exclusions stay interpreted.

The module list comes from pyproject.toml, so modules added later are covered automatically.
An editable development install (`pip install -e .`) is interpreted by design: run the suite
with DANM_EXPECT_INTERPRETED=1 there, and this test checks that instead.
"""

import fnmatch
import importlib.util
import os
import tomllib

from testlib import REPO

EXTENSION_SUFFIX = ".so"


def mypyc_configuration() -> dict[str, list[str]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    hook = project["tool"]["hatch"]["build"]["targets"]["wheel"]["hooks"]["mypyc"]
    return {"include": hook["include"], "exclude": hook["exclude"]}


def source_modules() -> dict[str, bool]:
    """danm module name -> whether the build configuration compiles it."""
    config = mypyc_configuration()
    assert config["include"] == ["/danm"]
    compiled: dict[str, bool] = {}
    for path in sorted((REPO / "danm").glob("*.py")):
        relative = "/" + path.relative_to(REPO).as_posix()
        excluded = any(fnmatch.fnmatch(relative, pattern) for pattern in config["exclude"])
        name = "danm" if path.stem == "__init__" else f"danm.{path.stem}"
        compiled[name] = not excluded
    return compiled


def test_exclusions_are_few_and_known() -> None:
    excluded = sorted(name for name, compiled in source_modules().items() if not compiled)
    # generated protobuf/grpc code (kubelet PodResources) stays interpreted as generated
    assert excluded == ["danm.__main__", "danm.cli", "danm.podresources_v1_pb2", "danm.podresources_v1_pb2_grpc", "danm.types"]


def test_each_module_is_built_as_configured() -> None:
    expect_interpreted = os.environ.get("DANM_EXPECT_INTERPRETED") == "1"
    modules = source_modules()
    assert len(modules) >= 8
    for name, compiled in modules.items():
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        if compiled and not expect_interpreted:
            assert spec.origin.endswith(EXTENSION_SUFFIX), f"{name} is not compiled: {spec.origin}"
            assert "site-packages" in spec.origin, f"{name} comes from the source tree: {spec.origin}"
        else:
            assert spec.origin.endswith(".py"), f"{name} should be interpreted: {spec.origin}"


def test_structs_keep_their_wire_names_when_imported_by_compiled_code() -> None:
    """mypyc breaks Structs defined in compiled modules; ours live in interpreted danm.types."""
    import msgspec

    from danm import annotation

    (request,) = annotation.parse_interfaces('[{"tenantNetwork":"t"}]')
    assert msgspec.json.encode(request) == b'{"tenantNetwork":"t"}'
