"""Alibaba Cloud: the lake on an OSS bucket (oss.py, through Alibaba's alibabacloud-oss-v2 SDK, which
loads only when the lake is opened). Its settings come from the environment or the secrets file like every
other; the access key secret is held out of repr() and never logged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator.config import _flag, lookup
from orchestrator.errors import InvalidInput

if TYPE_CHECKING:
    from orchestrator.clouds.aliyun.oss import OssLake
    from orchestrator.config import Settings


@dataclass(frozen=True)
class AliyunSettings:
    """The OSS bucket behind the lake and the access key that signs its requests."""

    bucket: str
    endpoint: str
    region: str = ""  # empty: read from an endpoint such as https://oss-cn-hangzhou.aliyuncs.com
    access_key_id: str = ""
    access_key_secret: str = field(default="", repr=False)
    path_style: bool = False  # /bucket/key instead of bucket.endpoint/key (an OSS-compatible server)


def read_settings() -> AliyunSettings:
    """The aliyun profile's settings; the bucket, endpoint and access key are required."""
    settings = AliyunSettings(
        bucket=lookup("ORCHESTRATOR_ALIYUN_OSS_BUCKET"),
        endpoint=lookup("ORCHESTRATOR_ALIYUN_OSS_ENDPOINT"),
        region=lookup("ORCHESTRATOR_ALIYUN_OSS_REGION"),
        access_key_id=lookup("ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID"),
        access_key_secret=lookup("ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET"),
        path_style=_flag("ORCHESTRATOR_ALIYUN_OSS_PATH_STYLE", False),
    )
    for name, value in (
        ("ORCHESTRATOR_ALIYUN_OSS_BUCKET", settings.bucket),
        ("ORCHESTRATOR_ALIYUN_OSS_ENDPOINT", settings.endpoint),
        ("ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID", settings.access_key_id),
        ("ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET", settings.access_key_secret),
    ):
        if not value:
            raise InvalidInput(name, "is not set; the aliyun profile keeps its lake in an OSS bucket")
    return settings


def open_lake(settings: Settings) -> OssLake:
    from orchestrator.clouds.aliyun.oss import OssConfig, OssLake

    found = settings.cloud_settings
    if not isinstance(found, AliyunSettings):
        raise InvalidInput("ORCHESTRATOR_PROFILE", f"the {settings.profile} profile has no OSS bucket")
    return OssLake(
        OssConfig(
            bucket=found.bucket,
            endpoint=found.endpoint,
            region=found.region,
            access_key_id=found.access_key_id,
            access_key_secret=found.access_key_secret,
            path_style=found.path_style,
        )
    )
