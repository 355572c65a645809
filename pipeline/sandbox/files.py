"""Files the sandbox writes for its clients: replaced atomically, readable by the owner only."""

from __future__ import annotations

from pathlib import Path


def write_private(path: Path, content: str | bytes) -> None:
    """Write `content` to a temporary name and rename it into place, mode 0600.

    A reader never sees a half-written file, and secrets are never world-readable, even briefly.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.touch(mode=0o600)
    tmp.chmod(0o600)
    if isinstance(content, bytes):
        tmp.write_bytes(content)
    else:
        tmp.write_text(content)
    tmp.replace(path)
