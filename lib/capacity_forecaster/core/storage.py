"""One storage interface for every stage: artifacts by key under a run root, on disk and S3.

A run always keeps its artifacts on local disk under ``<output_root>/<run_id>/`` (atomic writes:
temp file, then rename). With the ``s3`` backend every artifact is mirrored to
``s3://<bucket>/<prefix>/<run_id>/<key>`` and reads prefer S3, falling back to the local copy
when the params allow it. Keys are the same everywhere: ``raw/metrics.parquet`` and so on.

S3 goes through plain boto3 with botocore's standard retry mode; credentials come from the
standard AWS chain (never from params), and any failure becomes one clear line naming the
bucket or URI instead of a botocore traceback. Every object carries the Content-Type its key's
suffix names (``content_type``), so a browser shows the HTML pages, PDFs and charts of a run
instead of downloading them.
"""

from __future__ import annotations

import io
import json
import logging
import mimetypes
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from capacity_forecaster.core.errors import StageCheckError, StorageError
from capacity_forecaster.core.params import Params, S3Params, check_run_id

logger = logging.getLogger(__name__)


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_NEW_FILE_MODE = (
    _new_file_mode()
)  # read once at import: os.umask is process-wide and not thread-safe


class ArtifactNotFoundError(StorageError):
    """The key does not exist in the run (nor in its local fallback)."""


def _check_key(key: str) -> str:
    path = PurePosixPath(key)
    if not key or path.is_absolute() or ".." in path.parts or key.endswith("/"):
        raise StorageError(
            f"invalid artifact key {key!r}: use a relative path such as 'raw/metrics.parquet'"
        )
    return str(path)


@dataclass(frozen=True)
class LocalStore:
    """Artifacts as files under ``root``; every write is atomic."""

    root: Path

    def uri(self, key: str) -> str:
        return str(self.root / _check_key(key))

    def path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def read_bytes(self, key: str) -> bytes:
        path = self.path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFoundError(f"{key}: not found at {path}") from None
        except OSError as exc:
            raise StorageError(f"{key}: cannot read {path}: {exc.strerror}") from None

    def write_bytes(self, key: str, data: bytes) -> str:
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Temp file in the same directory, then rename: readers see the old file or the
            # whole new one, never a half-written artifact.
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                # mkstemp makes the file owner-only; artifacts are for sharing, so give them
                # the permissions any new file of this process would get.
                os.chmod(tmp, _NEW_FILE_MODE)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"{key}: cannot write {path}: {exc.strerror or exc}") from None
        return str(path)

    def list_keys(self, prefix: str = "") -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not _is_partial(p)
        )

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)


# The types Python's built-in table lacks or names otherwise (3.11 says application/javascript
# and has no xlsx); HTML declares its charset because every page a run writes is UTF-8.
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".parquet": "application/vnd.apache.parquet",
    ".ipynb": "application/x-ipynb+json",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
}
# Python's built-in table only: the module-level guess_type also reads the host's
# /etc/mime.types, which would make an object's type depend on the machine that ran the run.
_BUILTIN_TYPES = mimetypes.MimeTypes().types_map[True]


def content_type(key: str) -> str:
    """The Content-Type of an artifact, from its key's suffix (application/octet-stream if unknown)."""
    suffix = PurePosixPath(key).suffix.lower()
    return _CONTENT_TYPES.get(suffix) or _BUILTIN_TYPES.get(suffix) or "application/octet-stream"


def s3_client(s3: S3Params | None = None) -> Any:
    """A boto3 S3 client with standard retries; endpoint and region from params or the AWS env."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 6},
        connect_timeout=10,
        read_timeout=60,
        region_name=(s3.region if s3 else None),
    )
    endpoint = s3.endpoint_url if s3 else None
    # A session of our own: boto3's default session caches credentials process-wide, and
    # sessions are not thread-safe.
    return boto3.session.Session().client("s3", endpoint_url=endpoint or None, config=config)


def _s3_error(exc: Exception, action: str, uri: str) -> StorageError:
    """Turn a botocore exception into one line a person can act on (never echoing secrets)."""
    from botocore import exceptions as bex

    if isinstance(exc, bex.NoCredentialsError | bex.PartialCredentialsError):
        return StorageError(
            f"S3: no AWS credentials found while trying to {action} {uri} "
            "(set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with an instance role)"
        )
    if isinstance(
        exc, bex.EndpointConnectionError | bex.ConnectTimeoutError | bex.ConnectionClosedError
    ):
        return StorageError(f"S3: cannot reach the endpoint while trying to {action} {uri}: {exc}")
    if isinstance(exc, bex.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        bucket = uri.split("/")[2] if uri.startswith("s3://") else uri
        if code == "NoSuchBucket":
            return StorageError(
                f"S3: bucket '{bucket}' does not exist (while trying to {action} {uri})"
            )
        if code in {"NoSuchKey", "404", "NotFound"} or status == 404:
            return ArtifactNotFoundError(f"S3: {uri} not found")
        if (
            code
            in {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
            or status == 403
        ):
            return StorageError(f"S3: access denied ({code}) while trying to {action} {uri}")
        return StorageError(
            f"S3: {code} while trying to {action} {uri}: {error.get('Message', '')}".rstrip(": ")
        )
    if isinstance(exc, bex.BotoCoreError):
        return StorageError(f"S3: {exc} (while trying to {action} {uri})")
    return StorageError(f"S3: {type(exc).__name__}: {exc} (while trying to {action} {uri})")


@dataclass(frozen=True)
class S3Store:
    """Artifacts as objects under ``s3://bucket/prefix``; S3 puts are whole or absent."""

    bucket: str
    prefix: str
    params: S3Params
    client: Any = field(repr=False, compare=False)

    def _key(self, key: str) -> str:
        return "/".join(part for part in (self.prefix, _check_key(key)) if part)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    @property
    def root_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _extra_args(self, key: str) -> dict[str, str]:
        """What every put of ``key`` sends besides the bytes: its Content-Type and encryption."""
        extra = {"ContentType": content_type(key)}
        if self.params.sse != "none":
            extra["ServerSideEncryption"] = self.params.sse
            if self.params.kms_key_id:
                extra["SSEKMSKeyId"] = self.params.kms_key_id
        return extra

    def size(self, key: str) -> int:
        try:
            return int(
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"]
            )
        except Exception as exc:
            raise _s3_error(exc, "check", self.uri(key)) from None

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
            return True
        except ArtifactNotFoundError:
            return False

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except Exception as exc:
            raise _s3_error(exc, "read", self.uri(key)) from None

    def write_bytes(self, key: str, data: bytes) -> str:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, **self._extra_args(key)
            )
        except Exception as exc:
            raise _s3_error(exc, "write", self.uri(key)) from None
        return self.uri(key)

    def upload_file(self, key: str, path: Path) -> str:
        try:
            # upload_file switches to multipart for large files; S3 shows the object only once
            # the upload completes, so it is whole or absent.
            self.client.upload_file(
                str(path), self.bucket, self._key(key), ExtraArgs=self._extra_args(key)
            )
        except Exception as exc:
            raise _s3_error(exc, "upload", self.uri(key)) from None
        return self.uri(key)

    def list_keys(self, prefix: str = "") -> list[str]:
        # A folder prefix ends with "/" (so "reports/plots/" does not match "reports/plots_old").
        folder = "/" if prefix.endswith("/") else ""
        base = self._key(prefix.rstrip("/")) + folder if prefix.rstrip("/") else self.prefix
        start = f"{self.prefix}/" if self.prefix else ""
        keys: list[str] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=base):
                keys += [item["Key"][len(start) :] for item in page.get("Contents", [])]
        except Exception as exc:
            raise _s3_error(exc, "list", f"s3://{self.bucket}/{base}") from None
        return sorted(keys)

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            raise _s3_error(exc, "delete", self.uri(key)) from None


@dataclass(frozen=True)
class RunStorage:
    """A run's artifacts: always on local disk, mirrored to S3 when the params say so."""

    run_id: str
    local: LocalStore
    s3: S3Store | None = None
    local_fallback: bool = True

    @property
    def root_uri(self) -> str:
        return self.s3.root_uri if self.s3 else str(self.local.root)

    def describe(self) -> str:
        mirror = f", mirrored to {self.root_uri}" if self.s3 else ""
        return f"run {self.run_id} at {self.local.root}{mirror}"

    def uri(self, key: str) -> str:
        return self.s3.uri(key) if self.s3 else self.local.uri(key)

    def exists(self, key: str) -> bool:
        return (self.s3 is not None and self.s3.exists(key)) or (
            (self.s3 is None or self.local_fallback) and self.local.exists(key)
        )

    def write_bytes(self, key: str, data: bytes) -> str:
        """Write locally (atomically), then to S3; returns where the artifact now lives."""
        location = self.local.write_bytes(key, data)
        if self.s3 is not None:
            location = self.s3.write_bytes(key, data)
        logger.debug("wrote %s (%d bytes) to %s", key, len(data), location)
        return location

    def write_beside_runs(self, key: str, data: bytes) -> str:
        """Write a file about runs at the output prefix, the parent of the run folders.

        ``<run.output_root>/<key>`` on disk (atomically), then ``s3://<bucket>/<prefix>/<key>``
        with S3; returns where it now lives. For pointers such as latest.json, not run artifacts.
        """
        # open_run_storage puts the run one level below both roots, and a run id is a single
        # name (check_run_id): one level up is the output prefix on disk and in S3 alike.
        location = LocalStore(self.local.root.parent).write_bytes(key, data)
        if self.s3 is not None:
            parent = replace(self.s3, prefix=self.s3.prefix.rpartition("/")[0])
            location = parent.write_bytes(key, data)
        logger.debug("wrote %s (%d bytes) beside the runs, at %s", key, len(data), location)
        return location

    def mirror_file(self, key: str) -> str:
        """Copy a file already written locally under the run root to S3 (no-op without S3)."""
        path = self.local.path(key)
        if not path.is_file():
            raise ArtifactNotFoundError(f"{key}: not found at {path}")
        return self.s3.upload_file(key, path) if self.s3 is not None else str(path)

    def read_bytes(self, key: str) -> bytes:
        """Read from S3 when configured (local copy as fallback), else from local disk."""
        if self.s3 is None:
            return self.local.read_bytes(key)
        try:
            return self.s3.read_bytes(key)
        except ArtifactNotFoundError:
            if not (self.local_fallback and self.local.exists(key)):
                raise ArtifactNotFoundError(
                    f"{key}: not found at {self.s3.uri(key)}"
                    + (f" nor at {self.local.path(key)}" if self.local_fallback else "")
                ) from None
            logger.warning("%s missing in S3, using the local copy %s", key, self.local.path(key))
            return self.local.read_bytes(key)

    def list_keys(self, prefix: str = "") -> list[str]:
        keys = set(self.local.list_keys(prefix))
        if self.s3 is not None:
            keys |= set(self.s3.list_keys(prefix))
        return sorted(keys)

    # Typed helpers: every stage reads and writes through these.

    def write_parquet(self, key: str, frame: pd.DataFrame) -> str:
        """Write a frame as parquet and check that what landed reads back with its rows and columns."""
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False, engine="pyarrow")
        location = self.write_bytes(key, buffer.getvalue())
        metadata = pq.read_metadata(self.local.path(key))
        if metadata.num_rows != len(frame) or metadata.schema.names[: frame.shape[1]] != [
            str(c) for c in frame.columns
        ]:
            raise StageCheckError(
                f"{key}: wrote {len(frame)} rows x {frame.shape[1]} columns but read back "
                f"{metadata.num_rows} rows x {len(metadata.schema.names)} columns"
            )
        if self.s3 is not None and self.s3.size(key) != self.local.path(key).stat().st_size:
            raise StageCheckError(
                f"{key}: the S3 copy {self.s3.uri(key)} differs in size from the local one"
            )
        return location

    def read_parquet(self, key: str) -> pd.DataFrame:
        data = self.read_bytes(key)
        try:
            return pd.read_parquet(io.BytesIO(data), engine="pyarrow")
        except Exception as exc:
            raise StorageError(
                f"{key}: not a readable parquet file at {self.uri(key)} ({type(exc).__name__}: {exc})"
            ) from None

    def write_json(self, key: str, obj: Any) -> str:
        text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default, allow_nan=False)
        return self.write_bytes(key, (text + "\n").encode("utf-8"))

    def read_json(self, key: str) -> Any:
        data = self.read_bytes(key)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise StorageError(f"{key}: not valid JSON at {self.uri(key)} ({exc})") from None

    def write_text(self, key: str, text: str) -> str:
        return self.write_bytes(key, text.encode("utf-8"))


def _json_default(value: Any) -> Any:
    """JSON for the numpy/pandas scalars and dates that summaries naturally contain."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def open_run_storage(params: Params, run_id: str) -> RunStorage:
    """The storage of run ``run_id`` as the params describe it (a run id is a name: it never
    reaches outside ``run.output_root`` or the S3 prefix)."""
    check_run_id(run_id)
    local = LocalStore(Path(params.run.output_root) / run_id)
    s3_store = None
    if params.storage.backend == "s3":
        s3 = params.storage.s3
        assert s3 is not None  # guaranteed by the params schema
        prefix = "/".join(part for part in (s3.prefix, run_id) if part)
        s3_store = S3Store(bucket=s3.bucket, prefix=prefix, params=s3, client=s3_client(s3))
    return RunStorage(
        run_id=run_id, local=local, s3=s3_store, local_fallback=params.storage.local_fallback
    )


def read_source(location: str, s3: S3Params | None = None) -> bytes:
    """The bytes of a user's input file: a local path or an ``s3://bucket/key`` URI."""
    if location.startswith("s3://"):
        bucket, _, key = location[5:].partition("/")
        if not bucket or not key:
            raise StorageError(f"{location}: expected s3://bucket/key")
        try:
            return s3_client(s3).get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            raise _s3_error(exc, "read", location) from None
    path = Path(location)
    if not path.is_file():
        raise ArtifactNotFoundError(f"input file not found: {path}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StorageError(f"cannot read input file {path}: {exc.strerror}") from None


def list_source(location: str, s3: S3Params | None = None) -> list[str]:
    """The files of a user's input, sorted: a file is itself; a local folder or an ``s3://``
    prefix holds every file below it (hidden files and unfinished writes left out)."""
    if location.startswith("s3://"):
        bucket, _, prefix = location[5:].partition("/")
        if not bucket:
            raise StorageError(f"{location}: expected s3://bucket/prefix")
        keys: list[str] = []
        try:
            paginator = s3_client(s3).get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                keys += [item["Key"] for item in page.get("Contents", [])]
        except Exception as exc:
            raise _s3_error(exc, "list", location) from None
        # A prefix names a folder (s3://b/export) or one object (s3://b/export/cpu.csv).
        folder = prefix.rstrip("/") + "/" if prefix else ""
        files = [k for k in keys if k == prefix or k.startswith(folder)]
        files = [k for k in files if not k.endswith("/") and not _is_hidden(k)]
        if not files:
            raise ArtifactNotFoundError(f"input not found: no objects under {location}")
        return [f"s3://{bucket}/{k}" for k in sorted(files)]
    path = Path(location)
    if path.is_file():
        return [str(path)]
    if not path.is_dir():
        raise ArtifactNotFoundError(f"input not found: {path}")
    files = [str(p) for p in iter_files(path) if not _is_hidden(str(p.relative_to(path)))]
    if not files:
        raise ArtifactNotFoundError(f"input folder {path} holds no files")
    return files


def _is_hidden(relative: str) -> bool:
    """A dot-file or a file in a dot-folder (``.DS_Store``, ``.ipynb_checkpoints/``)."""
    return any(part.startswith(".") for part in relative.split("/"))


def iter_files(root: Path) -> Iterator[Path]:
    """Every finished file under a local run root (temp files of unfinished writes excluded)."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not _is_partial(path):
            yield path


def _is_partial(path: Path) -> bool:
    """Temp files of writes still under way (atomic writes, notebooks being executed)."""
    return path.name.startswith(".") and (path.name.endswith(".tmp") or ".tmp." in path.name)
