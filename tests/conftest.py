"""Test collection for the whole suite.

tests/kernel needs a kernel with ipvlan, 802.1q and dummy links, which the host lacks: it runs
only inside user-mode Linux through `scripts/kernel-test tests/kernel`. tests/kernel_selftest
holds fixture modules for the runner's own test (tests/test_kernel_runner.py). Neither is
collected when pytest walks tests/; both are still collected when named explicitly (pytest
applies `collect_ignore` only while recursing), which is how scripts/kernel-test runs them.
"""

collect_ignore = ["kernel", "kernel_selftest"]
