"""Attachment files under the data directory: photo checks, storing, hashing, safe path resolution.

Everything here is synchronous file I/O: the service calls it through asyncio.to_thread.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path, PurePosixPath

from fusionhub.dispatch.errors import Invalid

MAX_PHOTO_BYTES = 5 * 1024 * 1024
PHOTO_TYPES = {"image/jpeg": ".jpg", "image/png": ".png"}
_MAGIC = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}
ATTACHMENTS_DIR = "attachments"


def check_photo(photo: bytes, content_type: str | None) -> str:
    """The photo's file suffix; Invalid unless it is a JPEG or PNG of at most 5 MB whose bytes agree."""
    if content_type not in PHOTO_TYPES:
        raise Invalid("photo_type", "a photo must be image/jpeg or image/png")
    if not photo:
        raise Invalid("photo", "the photo is empty")
    if len(photo) > MAX_PHOTO_BYTES:
        raise Invalid("photo", "the photo is larger than 5 MB")
    if not photo.startswith(_MAGIC[content_type]):
        raise Invalid("photo", f"the data is not a {content_type} picture")
    return PHOTO_TYPES[content_type]


def store_photo(data_dir: Path, photo: bytes, suffix: str) -> tuple[str, str]:
    """Write the photo as attachments/<uuid><suffix>; (path relative to data_dir, sha256)."""
    rel = f"{ATTACHMENTS_DIR}/{uuid.uuid4().hex}{suffix}"
    path = data_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    with open(tmp, "wb") as fh:
        fh.write(photo)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)  # a reader never sees half a file
    return rel, hashlib.sha256(photo).hexdigest()


def remove_quietly(data_dir: Path, rel: str) -> None:
    """Remove a stored file whose record was not written (the transaction failed)."""
    try:
        (data_dir / rel).unlink()
    except OSError:
        pass


def is_safe_relative(rel: str) -> bool:
    """Whether a stored path is relative and stays inside the data directory."""
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts and "\\" not in rel


def resolve(data_dir: Path, rel: str) -> Path | None:
    """The absolute path of a stored relative path, or None if it would leave the data directory."""
    if not is_safe_relative(rel):
        return None
    root = data_dir.resolve()
    path = (root / rel).resolve()
    return path if path.is_relative_to(root) else None


def file_sha256(path: Path) -> tuple[str, int] | None:
    """(sha256 hex, size) of a file, or None if it cannot be read."""
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 16):
                digest.update(chunk)
                size += len(chunk)
    except OSError:
        return None
    return digest.hexdigest(), size
