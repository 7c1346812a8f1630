"""preflight: staged, deadline-bound SSH/SFTP reachability checks for CI, and a library.

The command line is `preflight` (see `preflight.cli`). As a library:

- `preflight.check(targets, deadline=…) -> Report` runs the same checks on `model.Target`s;
- `preflight.connect(host, …) -> paramiko.Transport` and `preflight.open_sftp(host, …)` open
  connections through the same bounded stages, raising `preflight.PreflightError` (with the
  stage and diagnosis) when they cannot.

Names are imported on first use, so `import preflight` (and `preflight --version`) stays cheap
and paramiko is loaded only when an SSH stage runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["PreflightError", "__version__", "check", "connect", "open_sftp"]

if TYPE_CHECKING:
    from preflight.api import PreflightError, connect, open_sftp
    from preflight.runner import check


def __getattr__(name: str) -> Any:
    if name in ("connect", "open_sftp", "PreflightError"):
        from preflight import api

        return getattr(api, name)
    if name == "check":
        from preflight.runner import check

        return check
    raise AttributeError(f"module 'preflight' has no attribute {name!r}")
