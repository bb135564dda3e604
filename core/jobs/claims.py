"""Who owns a job: runner identities that say whether their process still lives.

An owner id is ``host|pid|start|token``. ``start`` is the process start time
from ``/proc`` so a new process that happens to get a dead one's pid (pid 1 in
a container restarted) is not taken for it; ``token`` tells apart two runners
in one process. A claim by a process on this host that is gone can be taken at
once; claims from other hosts wait for their lease to expire.
"""

from __future__ import annotations

import os
import socket
import uuid

__all__ = ["make_owner_id", "owner_is_dead", "process_start"]


def _stat(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
    except OSError:
        return []
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    return stat.rpartition(")")[2].split()


def process_start(pid: int) -> str:
    """The kernel's start time of ``pid`` (clock ticks since boot), or "" where unknown."""
    fields = _stat(pid)
    return fields[19] if len(fields) > 19 else ""


def make_owner_id() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}|{pid}|{process_start(pid)}|{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    """True only when sure: the owner ran on this host and its process is gone."""
    parts = owner.split("|")
    if len(parts) != 4 or parts[0] != socket.gethostname():
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by someone else
    fields = _stat(pid)
    if fields and fields[0] in ("Z", "X"):
        return True  # killed, not yet reaped by its parent
    if parts[2] and len(fields) > 19 and fields[19] != parts[2]:
        return True  # the pid was reused by a newer process
    return False
