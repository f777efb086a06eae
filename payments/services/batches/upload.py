"""Receiving a batch upload: stream it to MEDIA_ROOT, hashing it, within the size limit.

Django's default upload handlers keep small files in memory and spool big
ones to /tmp before the view runs; for a batch file we want one pass that
writes it where it will be kept, computes its SHA-256 on the way and stops
(HTTP 413) as soon as it grows beyond PAYDESK_BATCH_MAX_BYTES. Views install
`BatchUploadHandler` before the body is parsed (and check Content-Length
first, so an announced oversize body is refused before a byte is stored).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.utils.translation import gettext as _

FIELD_NAME = "file"
INCOMING_DIR = "batches/incoming"


class UploadTooLarge(Exception):
    """The upload is bigger than the configured limit (answer 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            _("The file is larger than the limit of %(mb)s MB.") % {"mb": f"{limit / (1024 * 1024):g}"}
        )
        self.limit = limit


def max_upload_bytes() -> int:
    return settings.PAYDESK_BATCH_MAX_BYTES


MULTIPART_SLACK = 64 * 1024


def check_content_length(meta: dict, limit: int, slack: int = 0) -> None:
    """Raise UploadTooLarge if the request announces a body over `limit` + `slack`.

    For a multipart upload the slack allows for the envelope (boundaries, part
    headers, small fields); the file itself is held to `limit` while it streams.
    """
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit + slack:
        raise UploadTooLarge(limit)


def _incoming_path() -> Path:
    directory = Path(settings.MEDIA_ROOT) / INCOMING_DIR
    directory.mkdir(parents=True, exist_ok=True)
    return directory / (secrets.token_hex(16) + ".part")


class StoredUpload(UploadedFile):
    """An uploaded batch file already written to disk, with its size and SHA-256."""

    def __init__(self, path: Path, name: str, size: int, sha256: str, content_type: str | None) -> None:
        super().__init__(open(path, "rb"), name=name, content_type=content_type, size=size)  # noqa: SIM115
        self.path = path
        self.sha256 = sha256
        self.adopted = False

    def adopt(self, storage_name: str) -> str:
        """Move the file to its final name under MEDIA_ROOT; return that name."""
        target = Path(settings.MEDIA_ROOT) / storage_name
        target.parent.mkdir(parents=True, exist_ok=True)
        self.file.close()
        os.replace(self.path, target)
        self.adopted = True
        return storage_name

    def discard(self) -> None:
        """Delete the file unless a batch took it."""
        self.file.close()
        if not self.adopted:
            self.path.unlink(missing_ok=True)


def store_bytes(data: bytes, name: str) -> StoredUpload:
    """Write `data` (e.g. the JSON items of a batch) as if it had been uploaded."""
    path = _incoming_path()
    path.write_bytes(data)
    return StoredUpload(path, name, len(data), hashlib.sha256(data).hexdigest(), "application/json")


class BatchUploadHandler(FileUploadHandler):
    """Write the `file` field of a multipart body to MEDIA_ROOT while hashing it; skip other files."""

    chunk_size = 256 * 1024

    def __init__(self, request=None, max_bytes: int | None = None) -> None:
        super().__init__(request)
        self.max_bytes = max_upload_bytes() if max_bytes is None else max_bytes
        self.path: Path | None = None
        self.out = None
        self.digest = None
        self.size = 0
        self.done = False

    def new_file(
        self, field_name, file_name, content_type, content_length, charset=None, content_type_extra=None
    ):
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        if field_name != FIELD_NAME or self.done or self.out is not None:
            raise SkipFile()
        if content_length is not None and content_length > self.max_bytes:
            raise UploadTooLarge(self.max_bytes)
        self.path = _incoming_path()
        self.out = open(self.path, "wb")  # noqa: SIM115 - closed in file_complete / cleanup
        self.digest = hashlib.sha256()
        self.size = 0

    def receive_data_chunk(self, raw_data: bytes, start: int):
        if self.out is None:
            return raw_data
        self.size += len(raw_data)
        if self.size > self.max_bytes:
            self._cleanup()
            raise UploadTooLarge(self.max_bytes)
        self.out.write(raw_data)
        self.digest.update(raw_data)
        return None

    def file_complete(self, file_size: int):
        if self.out is None:
            return None
        self.out.close()
        self.out = None
        self.done = True
        return StoredUpload(
            self.path, self.file_name or "upload", self.size, self.digest.hexdigest(), self.content_type
        )

    def upload_interrupted(self) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
        if self.path is not None and not self.done:
            self.path.unlink(missing_ok=True)
