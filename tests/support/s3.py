"""An S3-compatible server for tests: moto's server mode, over HTTP on loopback.

The storage under test talks to it exactly as to AWS or MinIO (signed HTTP requests through
boto3); nothing in the process is patched.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

ACCESS_KEY = "backupsvc-test"
SECRET_KEY = "backupsvc-test-secret"  # moto accepts any credentials
REGION = "us-east-1"


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """Start moto's threaded server on 127.0.0.1 (a free port); yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def client(endpoint_url: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )


def create_bucket(endpoint_url: str) -> str:
    name = f"backupsvc-test-{uuid.uuid4().hex[:12]}"
    client(endpoint_url).create_bucket(Bucket=name)
    return name


def storage_settings(endpoint_url: str, bucket: str) -> dict[str, Any]:
    """``STORAGES["default"]`` as backupsvc.settings builds it when AWS_STORAGE_BUCKET_NAME is set."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "region_name": REGION,
            "addressing_style": "path",
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 300,
            "file_overwrite": False,
            "signature_version": "s3v4",
        },
    }
