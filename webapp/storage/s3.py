"""S3-compatible object storage through boto3: ``s3://bucket/prefix``.

Endpoint, region and credentials come from boto3's own settings (AWS_ENDPOINT_URL,
AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, or the shared config files),
as for every AWS tool. Every error of the store comes out as StoreUnavailable (unreachable,
throttled, 5xx: worth retrying), ObjectMissing, or StoreError (a lasting refusal).
"""

from __future__ import annotations

import base64
import contextlib
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import boto3
from boto3.exceptions import RetriesExceededError, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from s3transfer.utils import ChunksizeAdjuster

from .base import (
    AREAS,
    ObjectInfo,
    ObjectMissing,
    Progress,
    RangeRefused,
    Store,
    StoreError,
    StoreUnavailable,
    check_key,
    check_prefix,
    content_disposition,
    crc32_parts,
    temporary_key,
)

MIB = 1024 * 1024
TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "ServiceUnavailable",
    "InternalError",
    "OperationAborted",
}
MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
MISMATCH_CODES = {"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch"}


def _client_error(exc: ClientError, doing: str) -> StoreError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    detail = f"{code or 'error'} (HTTP {status}){': ' + error['Message'] if error.get('Message') else ''}"
    if code in MISSING_CODES:
        return ObjectMissing(f"no object to {doing}")
    if code == "InvalidRange" or status == 416:
        return RangeRefused(f"the range asked for is not in the object to {doing}")
    if code in MISMATCH_CODES:
        return StoreError(
            f"could not {doing}: the bytes sent differ from the file ({code}); nothing was kept"
        )
    if status >= 500 or code in TRANSIENT_CODES:
        return StoreUnavailable(f"the object store failed to {doing}: {detail}; try again later")
    return StoreError(f"the object store refused to {doing}: {detail}")


def translate(exc: BaseException, doing: str, endpoint: str) -> StoreError | None:
    """The store's error for a boto3/botocore exception; None for anything else."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, ClientError):
        return _client_error(exc, doing)
    if isinstance(exc, S3UploadFailedError | RetriesExceededError):
        cause = getattr(exc, "last_exception", None) or exc.__context__ or exc.__cause__
        found = translate(cause, doing, endpoint) if cause is not None else None
        return found or StoreUnavailable(f"the object store at {endpoint} failed to {doing}: {exc}")
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return StoreUnavailable(f"the object store at {endpoint} cannot be reached to {doing}: {exc}")
    if isinstance(exc, BotoCoreError):
        return StoreError(f"the object store at {endpoint} cannot {doing}: {exc}")
    return None


def _b64(crc: int) -> str:
    return base64.b64encode(crc.to_bytes(4, "big")).decode()


class _Body:
    """An object's bytes as a file-like reader whose errors are the store's."""

    def __init__(self, body, doing: str, endpoint: str):
        self._body, self._doing, self._endpoint = body, doing, endpoint

    def read(self, size: int = -1) -> bytes:
        try:
            return self._body.read(None if size is None or size < 0 else size)
        except Exception as exc:
            raise (translate(exc, self._doing, self._endpoint) or exc) from exc

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._body.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class S3Store(Store):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client=None,
        client_config: Config | None = None,
        transfer_config: TransferConfig | None = None,
        read_timeout: float = 60,
    ):
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        defaults = Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=read_timeout)
        config = defaults.merge(client_config) if client_config else defaults
        self.client = client or boto3.session.Session().client("s3", config=config)
        self.endpoint = self.client.meta.endpoint_url
        self.transfer = transfer_config or TransferConfig(
            multipart_threshold=64 * MIB, multipart_chunksize=16 * MIB
        )

    def __repr__(self) -> str:
        return f"S3Store(s3://{self.bucket}/{self.prefix} at {self.endpoint})"

    @contextlib.contextmanager
    def _errors(self, doing: str):
        try:
            yield
        except Exception as exc:
            found = translate(exc, doing, self.endpoint)
            if found is None or found is exc:
                raise
            raise found from exc

    def _full(self, key: str) -> str:
        return self.prefix + key

    def _info(self, key: str, size: int, etag: str, modified) -> ObjectInfo:
        return ObjectInfo(key, int(size), etag.strip('"'), modified)

    def _head(self, key: str) -> dict | None:
        try:
            with self._errors(f"stat {key!r}"):
                full = self._full(key)
                return self.client.head_object(Bucket=self.bucket, Key=full, ChecksumMode="ENABLED")
        except ObjectMissing:
            return None

    def stat(self, key: str) -> ObjectInfo | None:
        head = self._head(check_key(key))
        if head is None:
            return None
        return self._info(key, head["ContentLength"], head["ETag"], head["LastModified"])

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._full(prefix)
        )
        with self._errors(f"list {prefix!r}"):
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) :]
                    yield self._info(key, item["Size"], item["ETag"], item["LastModified"])

    def open(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        args = {"Bucket": self.bucket, "Key": self._full(check_key(key))}
        if start or end is not None:
            if start < 0 or (end is not None and end < start):
                raise RangeRefused(f"bytes {start}-{end} are not a range of {key!r}")
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        with self._errors(f"read {key!r}"):
            response = self.client.get_object(**args)
        return _Body(response["Body"], f"read {key!r}", self.endpoint)

    def download(self, key: str, dest: Path) -> ObjectInfo:
        info = self.stat(key)
        if info is None:
            raise ObjectMissing(f"no object at {key!r}")
        dest = Path(dest)
        partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            with self._errors(f"download {key!r}"):
                self.client.download_file(self.bucket, self._full(key), str(partial), Config=self.transfer)
            if partial.stat().st_size != info.size:
                raise StoreUnavailable(f"{key!r} changed while it was downloaded; try again")
            partial.replace(dest)
        finally:
            partial.unlink(missing_ok=True)
        return info

    def _checksums(self, source: Path, size: int) -> set[str]:
        """The CRC32 values the store may report for this file: of the whole, and (uploaded in
        parts) the composite one, the CRC32 of the parts' CRC32s with "-<parts>"."""
        part_size = ChunksizeAdjuster().adjust_chunksize(self.transfer.multipart_chunksize, size)
        whole, parts = crc32_parts(source, part_size)
        found = {_b64(whole)}
        if size >= self.transfer.multipart_threshold:
            composite = zlib.crc32(b"".join(part.to_bytes(4, "big") for part in parts))
            found.add(f"{_b64(composite)}-{len(parts)}")
        return found

    def _verify(self, key: str, head: dict | None, size: int, checksums: set[str]) -> None:
        if head is None or head["ContentLength"] != size:
            stored = None if head is None else head["ContentLength"]
            raise StoreError(f"{key!r}: {stored} bytes stored of {size}; the upload was not kept")
        reported = head.get("ChecksumCRC32")
        if reported and reported not in checksums:
            raise StoreError(
                f"{key!r}: the stored bytes differ from the file (CRC32); the upload was not kept"
            )

    def upload(self, source: Path, key: str, progress: Progress | None = None) -> ObjectInfo:
        temporary = temporary_key(key)
        size = Path(source).stat().st_size
        checksums = self._checksums(Path(source), size)
        try:
            with self._errors(f"upload {key!r}"):
                self.client.upload_file(
                    str(source), self.bucket, self._full(temporary), Config=self.transfer, Callback=progress
                )
            self._verify(key, self._head(temporary), size, checksums)
            with self._errors(f"upload {key!r}"):
                source_ref = {"Bucket": self.bucket, "Key": self._full(temporary)}
                self.client.copy(source_ref, self.bucket, self._full(key), Config=self.transfer)
            head = self._head(key)
            if head is None or head["ContentLength"] != size:
                raise StoreUnavailable(f"{key!r} did not appear whole after its upload; try again")
        finally:
            with contextlib.suppress(StoreError):
                self.delete(temporary)
        return self._info(key, head["ContentLength"], head["ETag"], head["LastModified"])

    def copy(self, source_key: str, key: str) -> ObjectInfo:
        """In the bucket (CopyObject, in parts when large): nothing is downloaded or sent again."""
        source = self._head(check_key(source_key))
        if source is None:
            raise ObjectMissing(f"no object at {source_key!r}")
        with self._errors(f"copy {source_key!r} to {key!r}"):
            source_ref = {"Bucket": self.bucket, "Key": self._full(source_key)}
            self.client.copy(source_ref, self.bucket, self._full(check_key(key)), Config=self.transfer)
        head = self._head(key)
        if head is None or head["ContentLength"] != source["ContentLength"]:
            raise StoreUnavailable(f"{key!r} did not appear whole after its copy; try again")
        return self._info(key, head["ContentLength"], head["ETag"], head["LastModified"])

    def delete(self, key: str) -> bool:
        if self._head(check_key(key)) is None:
            return False
        with self._errors(f"delete {key!r}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))
        return True

    def delete_prefix(self, prefix: str) -> int:
        check_prefix(prefix, min_depth=2)
        keys = [info.key for info in self.list(prefix)]
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self._full(key)} for key in keys[start : start + 1000]]
            with self._errors(f"delete under {prefix!r}"):
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            if answer.get("Errors"):
                first = answer["Errors"][0]
                reason = f"{first.get('Code')} {first.get('Message')}"
                raise StoreError(f"could not delete {first.get('Key')!r}: {reason}")
        return len(keys)

    def url(
        self,
        key: str,
        *,
        expires: int = 300,
        filename: str | None = None,
        mimetype: str | None = None,
        attachment: bool = True,
    ):
        params = {"Bucket": self.bucket, "Key": self._full(check_key(key))}
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename, attachment)
        if mimetype:
            params["ResponseContentType"] = mimetype
        with self._errors(f"sign a URL for {key!r}"):
            return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)

    def sweep_temporaries(self, older_than: float) -> int:
        """Remove stale temporaries, and abort stale multipart uploads that never completed:
        of temporaries (a process killed while sending one), and of final keys too (killed while
        copying a large temporary to its key in parts; nothing is seen at the key, but the parts
        take room). An upload older than `older_than` is dead, whatever its key."""
        removed = super().sweep_temporaries(older_than)
        cutoff = time.time() - older_than
        for area in AREAS:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self._full(f"{area}/")
            )
            with self._errors("sweep unfinished uploads"):
                for page in pages:
                    for upload in page.get("Uploads", []):
                        if upload["Initiated"].timestamp() <= cutoff:
                            self.client.abort_multipart_upload(
                                Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                            )
                            removed += 1
        return removed

    def create_bucket(self) -> None:
        """Make the bucket (tests and first setup); nothing when it is there already."""
        with self._errors(f"create the bucket {self.bucket!r}"):
            try:
                self.client.create_bucket(Bucket=self.bucket)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
