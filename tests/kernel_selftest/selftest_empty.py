"""No test at all: a selection that collects nothing must fail the kernel run."""
