"""Alibaba Cloud: the lake on an OSS bucket (oss.py, through Alibaba's alibabacloud-oss-v2 SDK) and the queues
on Simple Message Queue, formerly MNS (mns.py, through Alibaba's aliyun-mns-sdk); each SDK loads only when
its adapter is opened. The settings come from the environment or the secrets file like every other; one
access key signs both, and its secret is held out of repr() and never logged."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from orchestrator.config import _flag, lookup
from orchestrator.errors import InvalidInput

if TYPE_CHECKING:
    from orchestrator.clouds.aliyun.mns import MnsQueue
    from orchestrator.clouds.aliyun.oss import OssLake
    from orchestrator.config import Settings


MNS_ENDPOINT = "ORCHESTRATOR_ALIYUN_MNS_ENDPOINT"
SECURITY_TOKEN = "ORCHESTRATOR_ALIYUN_SECURITY_TOKEN"
_NO_MNS = (
    "is not set; the aliyun profile keeps its queues in Simple Message Queue (formerly MNS): give the "
    "account's endpoint, https://<account-id>.mns.<region>.aliyuncs.com"
)


@dataclass(frozen=True)
class AliyunSettings:
    """The OSS bucket behind the lake, the MNS endpoint of the queues and the access key that signs both."""

    bucket: str
    endpoint: str
    region: str = ""  # empty: read from an endpoint such as https://oss-cn-hangzhou.aliyuncs.com
    access_key_id: str = ""
    access_key_secret: str = field(default="", repr=False)
    # an STS token: the key pair is a temporary one (AssumeRole) and every request carries the token
    security_token: str = field(default="", repr=False)
    path_style: bool = False  # /bucket/key instead of bucket.endpoint/key (an OSS-compatible server)
    mns_endpoint: str = ""  # https://<account-id>.mns.<region>.aliyuncs.com
    # Function Compute, where small batches are cleaned (function_compute.py); required only to invoke it
    fc_endpoint: str = ""  # the account endpoint, https://<account-id>.<region>.fc.aliyuncs.com
    fc_function: str = ""  # the function's name
    fc_qualifier: str = ""  # a version or alias; empty: LATEST
    # E-MapReduce Serverless Spark, where large batches run (orchestrator/runners/emr_serverless.py)
    emr_endpoint: str = ""  # https://emr-serverless-spark.<region>.aliyuncs.com
    emr_workspace: str = ""  # the workspace id, w-...
    emr_queue: str = ""  # the workspace's resource queue; empty: root_queue
    emr_code: str = ""  # oss://bucket/folder holding clean_large_batch.py and orchestrator.zip
    emr_release: str = ""  # the engine's release version; empty: the runner's default
    emr_submit_parameters: str = ""  # more spark-submit parameters (executor sizes, a runtime environment)


def read_settings() -> AliyunSettings:
    """The aliyun profile's settings; the bucket, its endpoint and the access key are required."""
    settings = AliyunSettings(
        bucket=lookup("ORCHESTRATOR_ALIYUN_OSS_BUCKET"),
        endpoint=lookup("ORCHESTRATOR_ALIYUN_OSS_ENDPOINT"),
        region=lookup("ORCHESTRATOR_ALIYUN_OSS_REGION"),
        access_key_id=lookup("ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID"),
        access_key_secret=lookup("ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET"),
        security_token=lookup(SECURITY_TOKEN),
        path_style=_flag("ORCHESTRATOR_ALIYUN_OSS_PATH_STYLE", False),
        mns_endpoint=lookup(MNS_ENDPOINT),
        fc_endpoint=lookup("ORCHESTRATOR_ALIYUN_FC_ENDPOINT"),
        fc_function=lookup("ORCHESTRATOR_ALIYUN_FC_FUNCTION"),
        fc_qualifier=lookup("ORCHESTRATOR_ALIYUN_FC_QUALIFIER"),
        emr_endpoint=lookup("ORCHESTRATOR_ALIYUN_EMR_ENDPOINT"),
        emr_workspace=lookup("ORCHESTRATOR_ALIYUN_EMR_WORKSPACE"),
        emr_queue=lookup("ORCHESTRATOR_ALIYUN_EMR_QUEUE"),
        emr_code=lookup("ORCHESTRATOR_ALIYUN_EMR_CODE"),
        emr_release=lookup("ORCHESTRATOR_ALIYUN_EMR_RELEASE"),
        emr_submit_parameters=lookup("ORCHESTRATOR_ALIYUN_EMR_SUBMIT_PARAMETERS"),
    )
    for name, value in (
        ("ORCHESTRATOR_ALIYUN_OSS_BUCKET", settings.bucket),
        ("ORCHESTRATOR_ALIYUN_OSS_ENDPOINT", settings.endpoint),
        ("ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID", settings.access_key_id),
        ("ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET", settings.access_key_secret),
    ):
        if not value:
            raise InvalidInput(name, "is not set; the aliyun profile keeps its lake in an OSS bucket")
    return settings  # the MNS endpoint is required when a queue is opened: a lake alone needs none


def endpoint_parts(value: str, setting: str, example: str) -> tuple[str, str]:
    """An OpenAPI service endpoint's scheme and host[:port], or an error naming ``setting``."""
    if not value:
        raise InvalidInput(setting, f"is not set; give the service's endpoint, such as {example}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") or parts.query:
        raise InvalidInput(setting, f"{value!r} must be the service's endpoint, such as {example}")
    return parts.scheme, parts.netloc


def openapi_config(
    access_key_id: str,
    access_key_secret: str,
    endpoint: str,
    setting: str,
    example: str,
    security_token: str = "",
    **timeouts: int,
) -> Any:
    """The alibabacloud-tea-openapi Config of a service at ``endpoint`` (V3 signature), signed with an
    access key pair (and its STS token, if it is a temporary one); a missing or malformed endpoint or key
    names its setting."""
    from alibabacloud_tea_openapi import utils_models as openapi_models

    scheme, host = endpoint_parts(endpoint, setting, example)
    for name, value in (
        ("ORCHESTRATOR_ALIYUN_ACCESS_KEY_ID", access_key_id),
        ("ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET", access_key_secret),
    ):
        if not value:
            raise InvalidInput(name, "is not set; Alibaba Cloud's requests are signed with this access key")
    return openapi_models.Config(
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
        security_token=security_token or None,
        endpoint=host,
        protocol=scheme.upper(),
        **timeouts,
    )


def _found(settings: Settings, what: str) -> AliyunSettings:
    found = settings.cloud_settings
    if not isinstance(found, AliyunSettings):
        raise InvalidInput("ORCHESTRATOR_PROFILE", f"the {settings.profile} profile has no {what}")
    return found


def open_lake(settings: Settings) -> OssLake:
    from orchestrator.clouds.aliyun.oss import OssConfig, OssLake

    found = _found(settings, "OSS bucket")
    return OssLake(
        OssConfig(
            bucket=found.bucket,
            endpoint=found.endpoint,
            region=found.region,
            access_key_id=found.access_key_id,
            access_key_secret=found.access_key_secret,
            security_token=found.security_token,
            path_style=found.path_style,
        )
    )


def open_queue(name: str, settings: Settings) -> MnsQueue:
    """The queue ``name`` on Simple Message Queue, signed with the same access key as the lake."""
    found = _found(settings, "Simple Message Queue endpoint")
    if not found.mns_endpoint:
        raise InvalidInput(MNS_ENDPOINT, _NO_MNS)
    from orchestrator.clouds.aliyun.mns import MnsConfig, MnsQueue

    try:
        config = MnsConfig(
            endpoint=found.mns_endpoint,
            access_key_id=found.access_key_id,
            access_key_secret=found.access_key_secret,
            security_token=found.security_token,
        )
    except InvalidInput as err:
        if err.field == "endpoint":  # the setting's own name, so the Settings page points at it
            raise InvalidInput(MNS_ENDPOINT, str(err).split(": ", 1)[-1]) from None
        raise
    return MnsQueue(name, config)
