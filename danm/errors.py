"""The root of danm's error hierarchy.

It lives alone, with no imports, because the CNI VERSION path raises nothing yet must import
the error types: that path may not load msgspec (danm/types.py) or anything else slow.
"""


class DanmError(Exception):
    """Root of every error danm raises on purpose; the CNI maps subclasses to error codes."""
