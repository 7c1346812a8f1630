"""preflight: staged, deadline-bound SSH/SFTP reachability checks for CI, and a library.

The command line is `preflight` (see `preflight.cli`). As a library:

- `preflight.check(targets, deadline=…) -> Report` runs the same checks on `Target`s;
- `preflight.connect(hostname, port, username, password, …) -> paramiko.Transport` and
  `preflight.open_sftp(…)` open connections through the same bounded stages (paramiko's
  `SSHClient.connect` names: `pkey`, `key_filename`, `timeout`…), raising
  `preflight.PreflightError` (a `paramiko.SSHException` and an `OSError`, with the stage and
  the diagnosis) when they cannot; `aconnect`/`aopen_sftp` for asyncio code; an operation that
  stalls later raises `preflight.OperationTimeout` (a `TimeoutError`).

Names are imported on first use, so `import preflight` (and `preflight --version`) stays cheap
and paramiko is loaded only when an SSH stage runs or the library is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "OperationTimeout",
    "PreflightAuthError",
    "PreflightError",
    "PreflightTimeout",
    "Target",
    "Timeouts",
    "__version__",
    "aconnect",
    "aopen_sftp",
    "check",
    "connect",
    "open_sftp",
]

# Where each public name lives, imported when first asked for.
_HOMES = {
    **dict.fromkeys(
        (
            "OperationTimeout",
            "PreflightAuthError",
            "PreflightError",
            "PreflightTimeout",
            "aconnect",
            "aopen_sftp",
            "connect",
            "open_sftp",
        ),
        "preflight.api",
    ),
    "Target": "preflight.model",
    "Timeouts": "preflight.model",
    "check": "preflight.runner",
}

if TYPE_CHECKING:
    from preflight.api import (
        OperationTimeout,
        PreflightAuthError,
        PreflightError,
        PreflightTimeout,
        aconnect,
        aopen_sftp,
        connect,
        open_sftp,
    )
    from preflight.model import Target, Timeouts
    from preflight.runner import check


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'preflight' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)
