"""Write report files atomically, so a CI system never picks up half a report.

A run can be interrupted (Ctrl-C, the CI job's own timeout) while a report is being written, and
an artifact collector may read the path at any moment. `write_atomically` writes the whole text
to a temporary file next to the destination and renames it into place: readers see either the
previous file or the complete new one, never a truncated XML or JSON document.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["missing_directory", "unwritable_reason", "write_atomically"]

# Reports hold no secrets and are meant to be collected as CI artifacts: readable by everyone,
# unless the file being replaced had other permissions, which are kept.
_DEFAULT_MODE = 0o644


def write_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` as UTF-8 to `path`, creating missing parent directories.

    The text goes to a temporary file in the same directory, is flushed to disk and then renamed
    over `path` with `os.replace`; on any error the temporary file is removed and `path` is left
    as it was.
    """
    destination = Path(path)
    directory = destination.parent
    directory.mkdir(parents=True, exist_ok=True)
    try:
        mode = destination.stat().st_mode & 0o7777
    except OSError:
        mode = _DEFAULT_MODE
    fd, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, destination)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def missing_directory(path: str | os.PathLike[str]) -> Path | None:
    """The outermost directory on the way to `path` that does not exist yet (the one that
    `write_atomically` will create, with everything below it), or None."""
    missing = None
    directory = Path(path).parent
    while not directory.exists() and directory != directory.parent:
        missing = directory
        directory = directory.parent
    return missing


def unwritable_reason(path: str | os.PathLike[str]) -> str | None:
    """Why `path` cannot be written as a report, or None if it can. Checked before probing, so
    that a typo in --junit fails in a second instead of after the whole run. Leaves nothing
    behind (the test file is anonymous and the missing directories are not created)."""
    destination = Path(path)
    if destination.is_dir():
        return "is a directory"
    directory = destination.parent
    while not directory.exists():  # write_atomically will create the missing ones
        if directory == directory.parent:
            break
        directory = directory.parent
    if not directory.is_dir():
        return f"{directory} is not a directory"
    # Try, rather than ask os.access: root passes every permission check, yet cannot write
    # into /proc or a read-only mount.
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".preflight-probe-"):
            pass
    except OSError as exc:
        return f"{directory} is not writable ({exc.strerror or exc})"
    return None
