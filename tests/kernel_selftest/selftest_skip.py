"""One skipped test: alone or beside passing ones, the runner must report failure."""

import pytest


def test_skipped() -> None:
    pytest.skip("selftest: a skip must fail the kernel run")
