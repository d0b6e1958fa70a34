"""Shared test helpers: where fixtures and the reference material live, canonical JSON."""

import json
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"


def shared_dir() -> Path:
    """../shared beside the checkout (CI lays it there too), or $DANM_SHARED_DIR."""
    configured = os.environ.get("DANM_SHARED_DIR")
    path = Path(configured) if configured else REPO.parent / "shared"
    if not (path / "danm-manifests").is_dir():
        raise AssertionError(f"reference material not found at {path}; set DANM_SHARED_DIR")
    return path


def canonical(document: Any) -> str:
    """JSON with sorted keys and no whitespace: equal meaning gives equal text."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def danm_binary() -> Path:
    """The installed console script of the virtualenv running the tests."""
    import sys

    path = Path(sys.executable).parent / "danm"
    if not path.exists():
        raise AssertionError(f"{path} not found: install danm into this virtualenv first")
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without CNI_* variables, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CNI_")}
    env.update(extra)
    return env
