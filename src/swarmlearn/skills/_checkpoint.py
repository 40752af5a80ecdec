"""The run's state on disk: one JSON file, written atomically after every step.

``state.json`` is written to a temporary file in the run directory, flushed and
fsynced, then renamed over the old one, so a kill at any moment leaves either
the previous step's state or the new one, never half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from swarmlearn.errors import ArtifactError

__all__ = ["FORMAT_VERSION", "STATE_FILE", "read_state", "write_state"]

FORMAT_VERSION = 2
STATE_FILE = "state.json"


def write_state(run_dir: Path, state: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=run_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"format_version": FORMAT_VERSION, **state}, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, run_dir / STATE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dfd = os.open(run_dir, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_state(run_dir: Path) -> dict[str, Any]:
    path = run_dir / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path}: no skill run here (no {STATE_FILE})") from exc
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: unreadable state: {exc}") from exc
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        got = data.get("format_version") if isinstance(data, dict) else None
        raise ArtifactError(f"{path}: format_version {got!r} "
                            f"is not {FORMAT_VERSION}")
    return data
