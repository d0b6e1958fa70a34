"""Build hook: record the git commit in the wheel (for `danm version`), and leave no compiled
artifacts in the source tree.

hatch-mypyc compiles in place: without the clean-up, danm/*.so files would stay beside the
sources and shadow later edits of the .py files for anything that imports from the checkout.
"""

import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CommitRecordingHook(BuildHookInterface[Any]):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable":
            return  # an editable install asks git at run time, so it never goes stale
        try:
            found = subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=self.root,
                capture_output=True,
                text=True,
                check=False,
            )
            commit = found.stdout.strip() if found.returncode == 0 else "unknown"
        except OSError:
            commit = "unknown"
        record = Path(tempfile.mkdtemp()) / "_build_commit.txt"
        record.write_text(commit + "\n", encoding="utf-8")
        build_data["force_include"][str(record)] = "danm/_build_commit.txt"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        root = Path(self.root)
        for compiled in [*root.glob("danm/*.so"), *root.glob("*__mypyc*.so")]:
            compiled.unlink()
