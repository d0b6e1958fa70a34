"""What `danm version` reports: package version, the git commit it was built from, Python, CNI."""

import subprocess
import sys
from importlib import resources

from danm import __version__
from danm.cni import SPEC_VERSIONS

# Written into the wheel by hatch_build.py at build time.
COMMIT_RESOURCE = "_build_commit.txt"


def git_commit() -> str:
    """The commit of the build, or of the source checkout for an editable install."""
    package_dir = resources.files("danm")
    recorded = package_dir / COMMIT_RESOURCE
    if recorded.is_file():
        return recorded.read_text(encoding="utf-8").strip() or "unknown"
    try:
        found = subprocess.run(
            ["git", "-C", str(package_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except OSError:
        return "unknown"
    return found.stdout.strip() if found.returncode == 0 else "unknown"


def version_lines() -> list[str]:
    python = sys.version.split()[0]
    return [
        f"danm {__version__}",
        f"commit: {git_commit()}",
        f"python: {python} ({sys.implementation.name})",
        f"cni versions: {', '.join(SPEC_VERSIONS)}",
    ]
