"""Which storage a filter runs on: the one place settings become a :class:`Storage`.

==========================  ================  ============  =================
settings                    records           bytes         locks
==========================  ================  ============  =================
``storage = file``          ``FileRecords``   ``FileData``  ``FileLocker``
file, with ``redis_url``    ``RedisRecords``  ``FileData``  ``RedisLocker``
``storage = s3://b/p``      ``RedisRecords``  ``S3Data``    ``RedisLocker``
==========================  ================  ============  =================

boto3 and redis are optional dependencies (the ``s3`` and ``redis``
extras): they are imported here, when settings ask for them, never at
import time.  :func:`open_storage` checks at startup what would otherwise
fail at the first upload (Redis answers ``PING``; ``HeadBucket`` finds the
bucket with these credentials) and raises :class:`ConfigError` saying why.

Two filters on one Redis never share keys: each works below the namespace
``tus_filter:`` + its storage URL (S3) or its absolute ``tmp_file_dir`` (file).
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from .config import redacted
from .errors import ConfigError
from .locking import FileLocker, Locker
from .storage import DataStore, FileData, FileRecords, RecordStore, Storage

if TYPE_CHECKING:
    import redis

    from .config import S3Location, Settings

# Timeouts (seconds) of every Redis and S3 request: a backend that hangs
# must turn into a 503 the client retries, not into a request that waits
# for ever; and a startup check must not stall loadapp() for long.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0  # S3 answers CompleteMultipartUpload and part copies only when done
REDIS_TIMEOUT = 5.0  # Redis answers at once; a lock watchdog renews every few seconds
# Connections kept open to S3: a few per request thread, whose appends
# upload several parts at once (botocore's default keeps 10).
S3_CONNECTIONS = 32
S3_ATTEMPTS = 3  # botocore's "standard" retries, for throttling and 5xx answers


def open_storage(settings: Settings) -> Storage:
    """The storage ``settings`` name, after checking that its services answer."""
    location = settings.s3_location
    if location is None and settings.redis_url is None:
        return file_storage(
            settings.tmp_file_dir,
            valid_duration=settings.upload_valid_duration,
            lock_timeout=settings.lock_timeout,
            durable=settings.durable,
        )
    extra = "redis" if location is None else "s3"
    client = redis_client(settings.redis_url or "", extra=extra)
    try:
        data = (
            FileData(settings.tmp_file_dir, durable=settings.durable)
            if location is None
            else s3_data(settings, location)
        )
        records, locker = redis_records_and_locker(
            client, namespace=redis_namespace(settings), lock_timeout=settings.lock_timeout
        )
    except BaseException:
        client.close()  # no socket left behind by a filter that never started
        raise
    return Storage(records, data, locker, valid_duration=settings.upload_valid_duration)


def file_storage(
    directory: str, *, valid_duration: int, lock_timeout: float, durable: bool = True
) -> Storage:
    """Records, bytes and locks in ``directory``, for the hosts that share it.

    ``durable``: sync before acknowledging (see :mod:`tus_filter.storage.filesystem`).
    """
    return Storage(
        FileRecords(directory, durable=durable),
        FileData(directory, durable=durable),
        FileLocker(os.path.join(directory, "locks"), lock_timeout),
        valid_duration=valid_duration,
    )


def redis_namespace(settings: Settings) -> str:
    """The prefix of this filter's Redis keys: its storage URL, or its ``tmp_file_dir``."""
    if settings.s3_location is not None:
        return f"tus_filter:{settings.storage}"
    return f"tus_filter:{os.path.abspath(settings.tmp_file_dir)}"


# -- Redis ----------------------------------------------------------------------------------


def redis_client(url: str, *, extra: str) -> redis.Redis:
    """A client for ``url`` that answered ``PING``; ``extra`` names the pip extra it needs."""
    try:
        import redis
    except ImportError:
        raise ConfigError(
            f"tus_filter: redis_url: needs the redis package: pip install 'tus_filter[{extra}]'"
        ) from None
    client = redis.Redis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=REDIS_TIMEOUT
    )
    try:
        client.ping()
    except redis.RedisError as error:
        client.close()
        raise ConfigError(
            f"tus_filter: redis_url: {redacted(url)} does not answer PING ({error})"
        ) from None
    return client


def redis_records_and_locker(
    client: redis.Redis, *, namespace: str, lock_timeout: float
) -> tuple[RecordStore, Locker]:
    """Records and locks below ``namespace`` in Redis."""
    from .redis_locking import RedisLocker
    from .storage.redis import RedisRecords

    return (
        RedisRecords(client, namespace=namespace),
        RedisLocker(client, namespace=namespace, timeout=lock_timeout),
    )


# -- S3 ---------------------------------------------------------------------------------------


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client for the settings' endpoint and region, credentials from boto3's chain.

    Checksums only where an operation requires them (boto3 >= 1.36 sends CRC
    headers by default, which S3-compatible servers reject), path-style
    addressing for a custom endpoint (``s3_endpoint_url``: MinIO, Ceph,
    SeaweedFS need no wildcard DNS then), short timeouts and standard retries.
    """
    try:
        import boto3  # noqa: F401 - the package the s3 extra installs (with botocore)
        import botocore.session
        from botocore.config import Config
    except ImportError:
        raise ConfigError(
            f"tus_filter: storage: {settings.storage} needs boto3: pip install 'tus_filter[s3]'"
        ) from None
    addressing = "path" if settings.s3_endpoint_url else "auto"
    # A session of its own: boto3's default one would keep the credentials it
    # found first for every later filter of the process.  Its loader, a cache
    # of botocore's read-only service models, is shared: a filter then starts
    # in a fifth of the time (reading the S3 model costs a tenth of a second).
    session = botocore.session.Session()
    session.register_component("data_loader", _service_models())
    return session.create_client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": addressing},
            max_pool_connections=S3_CONNECTIONS,
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={"mode": "standard", "total_max_attempts": S3_ATTEMPTS},
        ),
    )


@functools.cache
def _service_models() -> Any:
    """The botocore loader that every filter's session shares."""
    from botocore.loaders import create_loader

    return create_loader()


def check_bucket(client: Any, settings: Settings, bucket: str) -> None:
    """``HeadBucket``: raise :class:`ConfigError` unless the bucket exists and is ours to use.

    A refusal (403) is never taken for a missing bucket (404).
    """
    import botocore.exceptions

    where = settings.s3_endpoint_url or "AWS"
    try:
        client.head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.response.get("Error", {}).get("Code", "")
        if status == 404 or code in ("404", "NoSuchBucket"):
            why = f"bucket {bucket!r} does not exist at {where}"
        elif status == 403 or code in ("403", "AccessDenied", "Forbidden"):
            why = (
                f"access to bucket {bucket!r} at {where} denied (HeadBucket: 403): "
                "credentials refused, or not allowed on this bucket"
            )
        else:
            why = f"HeadBucket of {bucket!r} at {where} answered {status} {code}".rstrip()
        raise ConfigError(f"tus_filter: storage: {why}") from None
    except botocore.exceptions.NoCredentialsError:
        raise ConfigError(
            "tus_filter: storage: no S3 credentials found (boto3 looks in the environment, "
            "the shared profile files and the instance role)"
        ) from None
    except botocore.exceptions.BotoCoreError as error:
        option = "s3_endpoint_url" if settings.s3_endpoint_url else "storage"
        raise ConfigError(f"tus_filter: {option}: {where} unreachable ({error})") from None


def s3_data(settings: Settings, location: S3Location) -> DataStore:
    """The S3 data store of ``storage = s3://…``, after ``HeadBucket`` found its bucket."""
    client = s3_client(settings)
    try:
        check_bucket(client, settings, location.bucket)
    except ConfigError:
        client.close()
        raise
    from .storage.s3 import S3Data

    os.makedirs(settings.tmp_file_dir, exist_ok=True)  # the spool, created as FileData's is
    data: DataStore = S3Data(
        client,
        bucket=location.bucket,
        prefix=location.prefix,
        spool_dir=settings.tmp_file_dir,
        max_size=settings.max_size,
    )
    return data
