"""Per-instance database copies: each emulator instance works on its own copy of the seed."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path


def private_copy(template: Path, directory: Path, prefix: str) -> Path:
    """Copy a seeded database to ``directory/{prefix}-{pid}-{random}.sqlite`` for one instance.

    Each emulator instance works on its own copy so tests never see each other's writes;
    copies left behind by crashed processes are swept first.
    """
    directory.mkdir(parents=True, exist_ok=True)
    remove_stale_copies(directory, prefix)
    copy = directory / f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:12]}.sqlite"
    shutil.copyfile(template, copy)
    return copy


def remove_stale_copies(directory: Path, prefix: str) -> None:
    """Delete ``{prefix}-{pid}-*.sqlite`` copies whose process is gone.

    Instances of crashed processes leave their copies behind; the pid in the file name
    tells whether the owner still runs.
    """
    for path in directory.glob(f"{prefix}-*.sqlite"):
        pid_text = path.name.split("-")[1]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
