"""One failing test: the runner must exit non-zero."""


def test_fails() -> None:
    assert 1 + 1 == 3, "selftest: deliberate failure"
