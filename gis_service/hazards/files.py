"""Photos and evidence files of the ledger, stored by content (SHA-256) beside the data.

Only JPEG, PNG and PDF are kept, recognised by their first bytes (never by the name or the
client's content type). A file is served only to users who can see a 隐患 that refers to
it (its photos or a step's evidence), so the hash is not a capability on its own.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from gis_service.errors import FieldProblem, InvalidInput, NotFound, TooLarge

MAX_FILE_BYTES = 10 * 1024 * 1024
#: Magic bytes → media type.
KINDS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)
_SHA = re.compile(r"^[0-9a-f]{64}$")
_SAFE = re.compile(r"[^\w.\-\u4e00-\u9fff]+")


def sniff(data: bytes) -> str:
    """The media type from the file's first bytes; 422 for anything else."""
    for magic, media in KINDS:
        if data.startswith(magic):
            return media
    raise InvalidInput(
        detail="only JPEG, PNG or PDF files are accepted",
        detail_zh="仅支持 JPEG、PNG 或 PDF 文件",
        fields=[FieldProblem("file", "unrecognised file type")],
    )


def path_of(root: Path, sha256: str) -> Path:
    """Where the file with this hash lives (the hash is checked, so no path tricks)."""
    if not _SHA.match(sha256):
        raise NotFound(detail="file not found", detail_zh="文件不存在")
    return root / sha256[:2] / sha256


def store(root: Path, data: bytes, name: str | None) -> dict[str, Any]:
    """Keep ``data`` (atomically, once per content) and return its reference."""
    if len(data) > MAX_FILE_BYTES:
        raise TooLarge(detail=f"files are limited to {MAX_FILE_BYTES // (1024 * 1024)} MB")
    if not data:
        raise InvalidInput(detail="empty file", fields=[FieldProblem("file", "empty")])
    media = sniff(data)
    sha = hashlib.sha256(data).hexdigest()
    target = path_of(root, sha)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    clean = _SAFE.sub("_", Path(name or "file").name).strip("._")[:120] or "file"
    return {
        "name": clean,
        "sha256": sha,
        "url": f"/hazard-files/{sha}",
        "media_type": media,
        "bytes": len(data),
    }
