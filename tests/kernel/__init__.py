"""Real-kernel tests (run via scripts/kernel-test); a package so that mypy tells its conftest from tests/conftest.py."""
