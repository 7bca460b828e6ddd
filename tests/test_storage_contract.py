"""One contract for every lake: the local filesystem twin, the ADLS Gen2 adapter (on Azurite) and the OSS
adapter (Alibaba's SDK against tests/fake_oss.py)."""

from __future__ import annotations

import hashlib
import http.server
import io
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from azure.storage.blob import BlobServiceClient

from orchestrator.clouds.aliyun.oss import MIN_PART, OssConfig, OssLake
from orchestrator.clouds.azure.adls import AdlsConfig, AdlsLake
from orchestrator.errors import AlreadyExists, InvalidInput, NotFound, ServiceError
from orchestrator.storage import LocalLake, Storage
from tests.azurite import KEY, Azurite, free_port, running_azurite
from tests.fake_oss import FakeOss

CHUNK = 64 * 1024  # small transfer chunks, so modest payloads span several staged blocks and ranged reads
PAYLOAD = bytes(range(256)) * (CHUNK * 3 // 256) + b"tail"


def _adls(server: Azurite, file_system: str, **options: object) -> AdlsLake:
    config = AdlsConfig(
        file_system, account_url=server.blob_url, account_key=KEY, chunk_size=CHUNK, **options
    )
    return AdlsLake(config)


@pytest.fixture
def file_system(azurite: Azurite) -> Iterator[str]:
    """A fresh, empty file system (container) on the shared Azurite, removed afterwards."""
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    name = f"lake-{uuid.uuid4().hex[:12]}"
    service.create_container(name)
    yield name
    service.delete_container(name)


OSS_KEY_ID, OSS_SECRET, OSS_REGION = "LTAI5tFakeKeyId0042", "oss-secret-0042-do-not-log", "cn-test"


def _oss(server: FakeOss, bucket: str = "lake", **options: object) -> OssLake:
    config = OssConfig(
        bucket,
        server.endpoint,
        OSS_KEY_ID,
        options.pop("secret", OSS_SECRET),
        region=OSS_REGION,
        path_style=True,
        chunk_size=MIN_PART,  # OSS's least part: PAYLOAD spans two parts
        **options,
    )
    return OssLake(config)


@pytest.fixture
def fake_oss() -> Iterator[FakeOss]:
    """A fresh local OSS with one empty bucket, ``lake``."""
    with FakeOss(OSS_KEY_ID, OSS_SECRET, OSS_REGION, ("lake",)) as server:
        yield server


@pytest.fixture(params=["local", "adls", "oss"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalLake(tmp_path / "lake")
    if request.param == "oss":
        return _oss(request.getfixturevalue("fake_oss"), retries=0)
    return _adls(request.getfixturevalue("azurite"), request.getfixturevalue("file_system"), retries=0)


def _put(lake: Storage, path: str, data: bytes, *, overwrite: bool = False) -> None:
    with lake.open_write(path, overwrite=overwrite) as writer:
        writer.write(data)


def _get(lake: Storage, path: str) -> bytes:
    with lake.open_read(path) as stream:
        return stream.read()


def test_written_file_reads_back_with_its_size_and_sha256(lake: Storage) -> None:
    with lake.open_write("raw/alice/job-1/orders.jsonl") as writer:
        for start in range(0, len(PAYLOAD), 10_000):
            writer.write(PAYLOAD[start : start + 10_000])
    assert writer.result.path == "raw/alice/job-1/orders.jsonl"
    assert writer.result.size == len(PAYLOAD)
    assert writer.result.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert lake.exists("raw/alice/job-1/orders.jsonl")
    assert _get(lake, "raw/alice/job-1/orders.jsonl") == PAYLOAD


def test_an_empty_file_is_a_file(lake: Storage) -> None:
    with lake.open_write("raw/alice/job-1/empty.jsonl") as writer:
        pass
    assert writer.result.size == 0
    assert _get(lake, "raw/alice/job-1/empty.jsonl") == b""
    assert list(lake.list("raw/alice")) == ["raw/alice/job-1/empty.jsonl"]


def test_write_once_refuses_a_second_write_and_keeps_the_original(lake: Storage) -> None:
    _put(lake, "raw/alice/job-1/orders.jsonl", b"original")
    with pytest.raises(AlreadyExists, match="written only once"):
        _put(lake, "raw/alice/job-1/orders.jsonl", PAYLOAD)
    assert _get(lake, "raw/alice/job-1/orders.jsonl") == b"original"


def test_of_two_racing_write_once_writers_only_the_first_to_finish_publishes(lake: Storage) -> None:
    first = lake.open_write("raw/alice/job-1/orders.jsonl")
    second = lake.open_write("raw/alice/job-1/orders.jsonl")
    first.__enter__().write(b"first")
    second.__enter__().write(PAYLOAD)
    first.__exit__(None, None, None)
    with pytest.raises(AlreadyExists):
        second.__exit__(None, None, None)
    assert _get(lake, "raw/alice/job-1/orders.jsonl") == b"first"


@pytest.mark.parametrize("overwrite", [False, True], ids=["new-file", "overwrite"])
def test_a_writer_that_fails_midway_leaves_nothing_visible(lake: Storage, overwrite: bool) -> None:
    _put(lake, "silver/cleaned/alice/job-1/orders.parquet", b"published")
    target = (
        "silver/cleaned/alice/job-1/orders.parquet"
        if overwrite
        else "silver/cleaned/alice/job-1/items.parquet"
    )
    with (
        pytest.raises(RuntimeError, match="cleaning crashed"),
        lake.open_write(target, overwrite=overwrite) as w,
    ):
        w.write(PAYLOAD)  # several chunks already sent
        raise RuntimeError("cleaning crashed")
    assert list(lake.list("silver")) == ["silver/cleaned/alice/job-1/orders.parquet"]
    assert _get(lake, "silver/cleaned/alice/job-1/orders.parquet") == b"published"
    assert lake.exists("silver/cleaned/alice/job-1/items.parquet") is False


def test_overwrite_publishes_the_new_bytes_all_at_once(lake: Storage) -> None:
    _put(lake, "gold/analytics/alice/job-1/daily.parquet", b"old version")
    with lake.open_write("gold/analytics/alice/job-1/daily.parquet", overwrite=True) as writer:
        writer.write(PAYLOAD)
        assert _get(lake, "gold/analytics/alice/job-1/daily.parquet") == b"old version"
    assert _get(lake, "gold/analytics/alice/job-1/daily.parquet") == PAYLOAD


def test_open_read_gives_a_seekable_stream_that_parquet_readers_accept(lake: Storage) -> None:
    table = pa.table({"order_id": list(range(20_000)), "status": ["paid", "shipped"] * 10_000})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    _put(lake, "silver/cleaned/alice/job-1/orders.parquet", buffer.getvalue())
    with lake.open_read("silver/cleaned/alice/job-1/orders.parquet") as stream:
        assert pq.read_table(stream).equals(table)
        stream.seek(-4, io.SEEK_END)
        assert stream.read() == b"PAR1"


def test_reading_a_missing_file_is_not_found(lake: Storage) -> None:
    with pytest.raises(NotFound, match=r"raw/alice/job-9/orders\.jsonl does not exist"):
        lake.open_read("raw/alice/job-9/orders.jsonl")
    assert lake.exists("raw/alice/job-9/orders.jsonl") is False


def test_list_is_sorted_by_segment_and_ignores_sibling_prefixes(lake: Storage) -> None:
    for path in ["raw/a/2.jsonl", "raw/a/1.jsonl", "raw/a/sub/x.jsonl", "raw/ab/y.jsonl", "raw/a-b/z.jsonl"]:
        _put(lake, path, b"{}")
    _put(lake, "raw/a.jsonl", b"{}")
    assert list(lake.list("raw/a")) == ["raw/a/1.jsonl", "raw/a/2.jsonl", "raw/a/sub/x.jsonl"]
    assert list(lake.list("raw")) == [
        "raw/a/1.jsonl",
        "raw/a/2.jsonl",
        "raw/a/sub/x.jsonl",
        "raw/a-b/z.jsonl",
        "raw/a.jsonl",
        "raw/ab/y.jsonl",
    ]
    assert list(lake.list("raw/missing")) == []
    assert list(lake.list("raw/a.jsonl")) == []  # a file is not a folder


def test_delete_prefix_removes_the_folder_and_nothing_beside_it(lake: Storage) -> None:
    for path in ["silver/cleaned/alice/job-1/a.parquet", "silver/cleaned/alice/job-1/part/b.parquet"]:
        _put(lake, path, b"x")
    _put(lake, "silver/cleaned/alice/job-10/a.parquet", b"kept")
    lake.delete_prefix("silver/cleaned/alice/job-1")
    lake.delete_prefix("silver/cleaned/alice/job-404")
    assert list(lake.list("silver")) == ["silver/cleaned/alice/job-10/a.parquet"]
    assert lake.exists("silver/cleaned/alice/job-1/a.parquet") is False


def test_free_space_is_what_the_disk_has_left_and_a_storage_account_has_no_limit(lake: Storage) -> None:
    free = lake.free_bytes()
    if isinstance(lake, LocalLake):
        root = lake.root
        disk = shutil.disk_usage(next(p for p in (root, *root.parents) if p.exists()))
        assert 0 < free <= disk.total  # the disk the lake will be on, before its root folder exists
    else:
        assert free is None


@pytest.mark.parametrize(
    "path",
    [
        "../outside.jsonl",
        "raw/../../outside.jsonl",
        "/etc/passwd",
        "",
        "..",
        pytest.param("raw//orders.jsonl", id="empty-segment"),
        pytest.param("raw/orders.jsonl/", id="trailing-slash"),
        pytest.param("./raw/orders.jsonl", id="dot-segment"),
        pytest.param("raw/.orders.jsonl", id="hidden-name"),
    ],
)
def test_paths_that_could_escape_or_alias_are_refused(lake: Storage, path: str) -> None:
    with pytest.raises(InvalidInput, match="path"), lake.open_write(path) as writer:
        writer.write(b"x")
    for call in (lake.open_read, lake.exists, lake.list, lake.delete_prefix):
        with pytest.raises(InvalidInput, match="path"):
            call(path)
    _put(lake, "raw/alice/job-1/orders.jsonl", b"{}")
    assert list(lake.list("raw")) == ["raw/alice/job-1/orders.jsonl"]


# ---- ADLS only: configuration, connection test and faults -------------------------------------------


def test_bad_paths_are_refused_before_any_request_is_sent() -> None:
    """Against an endpoint nobody listens on, a request would fail as unreachable, not as InvalidInput."""
    lake = AdlsLake(AdlsConfig("lake", account_url=f"http://127.0.0.1:{free_port()}/acct", account_key=KEY))
    for call in (lake.open_read, lake.exists, lake.list, lake.delete_prefix):
        with pytest.raises(InvalidInput, match="path"):
            call("raw/../x")
    with pytest.raises(InvalidInput, match="path"), lake.open_write("raw/../x"):
        pass


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"file_system": "Bad_Name", "account_url": "https://a.dfs.core.windows.net", "account_key": KEY},
         "file_system"),
        ({"file_system": "lake", "account_url": "ftp://a.example", "account_key": KEY}, "account_url"),
        ({"file_system": "lake", "account_url": "https://a.dfs.core.windows.net"}, "account_key"),
        ({"file_system": "lake", "account_url": "https://a.dfs.core.windows.net", "account_key": KEY,
          "connection_string": "AccountName=a"}, "connection_string"),
    ],
)  # fmt: skip
def test_a_bad_configuration_names_the_setting_to_change(options: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        AdlsConfig(**options)
    assert caught.value.field == field
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"account_url": "http://10.1.2.3/", "account_key": KEY}, "account_url"),
        ({"connection_string": f"AccountKey={KEY}"}, "connection_string"),
    ],
)
def test_settings_that_name_no_account_are_refused(options: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        AdlsLake(AdlsConfig("lake", **options))
    assert caught.value.field == field
    assert KEY not in str(caught.value)


def test_secrets_stay_out_of_repr() -> None:
    config = AdlsConfig("lake", account_url="https://acct.dfs.core.windows.net", account_key=KEY)
    via_string = AdlsConfig("lake", connection_string=f"AccountName=acct;AccountKey={KEY}")
    for text in (repr(config), repr(via_string), repr(AdlsLake(config))):
        assert KEY not in text
    assert "https://acct.blob.core.windows.net" in repr(AdlsLake(config))


def test_connection_test_reports_success(azurite: Azurite, file_system: str) -> None:
    check = _adls(azurite, file_system).test_connection()
    assert check.ok
    assert file_system in check.message


def test_connection_test_also_works_from_a_connection_string(azurite: Azurite, file_system: str) -> None:
    lake = AdlsLake(AdlsConfig(file_system, connection_string=azurite.connection_string))
    assert lake.test_connection().ok
    _put(lake, "raw/alice/job-1/orders.jsonl", b"{}")
    assert list(lake.list("raw")) == ["raw/alice/job-1/orders.jsonl"]


@pytest.mark.parametrize("by", ["account_key", "connection_string"])
def test_connection_test_names_a_wrong_key(azurite: Azurite, file_system: str, by: str) -> None:
    wrong = "V3Jvbmc=" * 11
    if by == "account_key":
        config = AdlsConfig(file_system, account_url=azurite.blob_url, account_key=wrong)
    else:
        config = AdlsConfig(file_system, connection_string=azurite.connection_string.replace(KEY, wrong))
    check = AdlsLake(config).test_connection()
    assert (check.ok, check.field) == (False, by)
    assert f"refused the credentials; check {by}" in check.message
    assert wrong not in check.message


def test_connection_test_names_a_missing_file_system(azurite: Azurite) -> None:
    check = _adls(azurite, "no-such-lake").test_connection()
    assert (check.ok, check.field) == (False, "file_system")
    assert "'no-such-lake' does not exist" in check.message


def test_connection_test_names_an_unreachable_endpoint_within_seconds() -> None:
    url = f"http://127.0.0.1:{free_port()}/devstoreaccount1"
    started = time.monotonic()
    check = AdlsLake(AdlsConfig("lake", account_url=url, account_key=KEY)).test_connection()
    assert time.monotonic() - started < 15
    assert (check.ok, check.field) == (False, "account_url")
    assert f"cannot reach the lake at {url}" in check.message


def test_connection_test_names_an_endpoint_that_is_not_a_storage_service() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)  # answers 501
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/devstoreaccount1"
        check = AdlsLake(AdlsConfig("lake", account_url=url, account_key=KEY)).test_connection()
    finally:
        server.shutdown()
    assert (check.ok, check.field) == (False, "account_url")
    assert "not as a storage service does" in check.message


def test_a_file_replaced_while_being_read_stops_the_reader(azurite: Azurite, file_system: str) -> None:
    lake = _adls(azurite, file_system)
    _put(lake, "gold/analytics/alice/job-1/daily.parquet", PAYLOAD)
    with lake.open_read("gold/analytics/alice/job-1/daily.parquet") as stream:
        assert stream.read(10) == PAYLOAD[:10]
        _put(lake, "gold/analytics/alice/job-1/daily.parquet", b"new", overwrite=True)
        with pytest.raises(ServiceError, match="was replaced while it was being read"):
            stream.read()


def test_azurite_stopped_mid_write_leaves_nothing_half_written() -> None:
    with running_azurite("blob") as server:
        BlobServiceClient.from_connection_string(server.connection_string).create_container("lake")
        lake = _adls(server, "lake", retries=0, connect_timeout_s=2)
        _put(lake, "raw/alice/job-1/orders.jsonl", b"original")
        for path, overwrite in [
            ("raw/alice/job-2/orders.jsonl", False),
            ("raw/alice/job-1/orders.jsonl", True),
        ]:
            with pytest.raises(ServiceError) as caught, lake.open_write(path, overwrite=overwrite) as writer:
                writer.write(PAYLOAD)  # three chunks staged
                server.stop("blob")
                writer.write(PAYLOAD)
            assert caught.value.field == "account_url"
            assert "cannot reach the lake" in str(caught.value)
            assert KEY not in str(caught.value)
            server.start("blob")
            assert list(lake.list("raw")) == ["raw/alice/job-1/orders.jsonl"]
            assert _get(lake, "raw/alice/job-1/orders.jsonl") == b"original"


# ---- OSS only: the headers that carry the guarantees, configuration, connection test and faults -------


def test_oss_raw_is_published_with_forbid_overwrite_and_every_body_with_its_md5(fake_oss: FakeOss) -> None:
    lake = _oss(fake_oss)
    _put(lake, "raw/alice/job-1/small.jsonl", b"{}")
    _put(lake, "raw/alice/job-1/large.jsonl", PAYLOAD)
    _put(lake, "gold/analytics/alice/job-1/daily.parquet", PAYLOAD, overwrite=True)
    [small] = [r for r in fake_oss.seen("PUT") if r.key.endswith("small.jsonl")]
    assert small.headers["x-oss-forbid-overwrite"] == "true" and "content-md5" in small.headers
    parts = fake_oss.seen("PUT", uploadId="")
    assert len(parts) == 4 and all("content-md5" in r.headers for r in parts)  # two parts per large file
    completes = fake_oss.seen("POST", uploadId="")
    assert [r.headers.get("x-oss-forbid-overwrite") for r in completes] == ["true", None]
    assert fake_oss.uploads == {}
    assert _get(lake, "raw/alice/job-1/large.jsonl") == PAYLOAD


def test_oss_a_write_that_fails_or_loses_the_race_leaves_no_upload_behind(fake_oss: FakeOss) -> None:
    lake = _oss(fake_oss)
    with pytest.raises(RuntimeError), lake.open_write("raw/alice/job-1/orders.jsonl") as writer:
        writer.write(PAYLOAD)
        assert len(fake_oss.uploads) == 1
        raise RuntimeError("generation crashed")
    assert fake_oss.uploads == {}
    late = lake.open_write("raw/alice/job-1/orders.jsonl")
    late.__enter__().write(PAYLOAD)
    _put(lake, "raw/alice/job-1/orders.jsonl", b"first")
    with pytest.raises(AlreadyExists):
        late.__exit__(None, None, None)
    assert fake_oss.uploads == {}
    assert _get(lake, "raw/alice/job-1/orders.jsonl") == b"first"


def test_oss_a_file_replaced_while_being_read_stops_the_reader(fake_oss: FakeOss) -> None:
    lake = _oss(fake_oss)
    _put(lake, "gold/analytics/alice/job-1/daily.parquet", PAYLOAD)
    with lake.open_read("gold/analytics/alice/job-1/daily.parquet") as stream:
        assert stream.read(10) == PAYLOAD[:10]
        _put(lake, "gold/analytics/alice/job-1/daily.parquet", b"new", overwrite=True)
        with pytest.raises(ServiceError, match="was replaced while it was being read"):
            stream.read()
    assert all(r.headers["if-match"].startswith('"') for r in fake_oss.seen("GET") if "range" in r.headers)


@pytest.mark.parametrize("size", [5, len(PAYLOAD)], ids=["put", "multipart"])
def test_oss_bytes_altered_on_the_way_are_refused_by_crc64(fake_oss: FakeOss, size: int) -> None:
    lake = _oss(fake_oss, retries=0)
    fake_oss.altered = True
    with pytest.raises(ServiceError, match=r"CRC64"):
        _put(lake, "raw/alice/job-1/orders.jsonl", PAYLOAD[:size])
    fake_oss.altered = False
    assert lake.exists("raw/alice/job-1/orders.jsonl") is False
    assert fake_oss.uploads == {}


def test_oss_refuses_a_body_that_does_not_match_its_content_md5(fake_oss: FakeOss) -> None:
    """The server side of the integrity check the adapter relies on: a corrupted body is never stored."""
    import alibabacloud_oss_v2 as oss

    lake = _oss(fake_oss, retries=0)
    request = oss.PutObjectRequest(
        bucket="lake", key="raw/x.jsonl", body=b"sent", content_md5="AAAAAAAAAAAAAAAAAAAAAA=="
    )
    with (
        pytest.raises(ServiceError, match=r"answered 400 \(InvalidDigest\)"),
        lake._calls("write raw/x.jsonl"),
    ):
        lake._client.put_object(request)
    assert lake.exists("raw/x.jsonl") is False


def test_oss_list_follows_continuation_tokens(fake_oss: FakeOss) -> None:
    lake = _oss(fake_oss)
    fake_oss.page_size = 2
    names = [f"raw/alice/job-1/t{i}.jsonl" for i in range(5)]
    for name in names:
        _put(lake, name, b"{}")
    assert list(lake.list("raw/alice")) == names
    assert len(fake_oss.seen("GET", **{"list-type": "2"})) == 3


def test_oss_bad_paths_are_refused_before_any_request_is_sent(fake_oss: FakeOss) -> None:
    lake = _oss(fake_oss)
    for call in (lake.open_read, lake.exists, lake.list, lake.delete_prefix):
        with pytest.raises(InvalidInput, match="path"):
            call("raw/../x")
    with pytest.raises(InvalidInput, match="path"), lake.open_write("raw/../x"):
        pass
    assert fake_oss.requests == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"bucket": "Bad_Bucket"}, "bucket"),
        ({"endpoint": "ftp://oss-cn-hangzhou.aliyuncs.com"}, "endpoint"),
        ({"endpoint": "https://oss-cn-hangzhou.aliyuncs.com/lake"}, "endpoint"),
        ({"endpoint": "http://127.0.0.1:9000"}, "region"),
        ({"access_key_id": ""}, "access_key_id"),
        ({"access_key_secret": ""}, "access_key_secret"),
        ({"chunk_size": 64 * 1024}, "chunk_size"),
    ],
)
def test_oss_a_bad_configuration_names_the_setting_to_change(options: dict[str, object], field: str) -> None:
    given = {
        "bucket": "lake",
        "endpoint": "https://oss-cn-hangzhou.aliyuncs.com",
        "access_key_id": OSS_KEY_ID,
        "access_key_secret": OSS_SECRET,
        **options,
    }
    with pytest.raises(InvalidInput) as caught:
        OssConfig(**given)
    assert caught.value.field == field
    assert OSS_SECRET not in str(caught.value)


def test_oss_region_comes_from_the_endpoint_and_the_secret_stays_out_of_repr() -> None:
    config = OssConfig("lake", "https://oss-cn-hangzhou-internal.aliyuncs.com", OSS_KEY_ID, OSS_SECRET)
    assert config.signing_region == "cn-hangzhou"
    for text in (repr(config), repr(OssLake(config))):
        assert OSS_SECRET not in text
    assert repr(OssLake(config)) == "OssLake(https://oss-cn-hangzhou-internal.aliyuncs.com, bucket='lake')"


def test_oss_connection_test_reports_success_and_names_what_is_wrong(fake_oss: FakeOss) -> None:
    check = _oss(fake_oss).test_connection()
    assert check.ok and "'lake'" in check.message
    wrong = _oss(fake_oss, secret="not-the-secret").test_connection()
    assert (wrong.ok, wrong.field) == (False, "access_key_secret")
    assert "refused the signature" in wrong.message and "not-the-secret" not in wrong.message
    unknown = OssLake(
        OssConfig("lake", fake_oss.endpoint, "LTAIunknown", OSS_SECRET, region=OSS_REGION, path_style=True)
    ).test_connection()
    assert (unknown.ok, unknown.field) == (False, "access_key_id")
    missing = _oss(fake_oss, bucket="no-such-lake").test_connection()
    assert (missing.ok, missing.field) == (False, "bucket")
    assert "'no-such-lake' does not exist" in missing.message
    for check in (wrong, unknown, missing):
        assert OSS_SECRET not in check.message


def test_oss_connection_test_names_an_unreachable_endpoint_or_one_that_is_not_oss() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    down = OssLake(OssConfig("lake", url, OSS_KEY_ID, OSS_SECRET, region=OSS_REGION, path_style=True))
    check = down.test_connection()
    assert time.monotonic() - started < 15
    assert (check.ok, check.field) == (False, "endpoint")
    assert f"cannot reach the lake at {url}" in check.message
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)  # answers 501
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        other = OssLake(OssConfig("lake", url, OSS_KEY_ID, OSS_SECRET, region=OSS_REGION, path_style=True))
        check = other.test_connection()
    finally:
        server.shutdown()
    assert (check.ok, check.field) == (False, "endpoint")
    assert "not as OSS does" in check.message


def test_oss_stopped_mid_write_leaves_nothing_half_written(fake_oss: FakeOss) -> None:
    lake = _oss(fake_oss, retries=0, connect_timeout_s=2)
    _put(lake, "raw/alice/job-1/orders.jsonl", b"original")
    for path, overwrite in [("raw/alice/job-2/orders.jsonl", False), ("raw/alice/job-1/orders.jsonl", True)]:
        with pytest.raises(ServiceError) as caught, lake.open_write(path, overwrite=overwrite) as writer:
            writer.write(PAYLOAD)  # one part sent, the rest held back
            fake_oss.stop()
            writer.write(PAYLOAD)
        assert caught.value.field == "endpoint"
        assert "cannot reach the lake" in str(caught.value) and OSS_SECRET not in str(caught.value)
        fake_oss.start()
        assert list(lake.list("raw")) == ["raw/alice/job-1/orders.jsonl"]
        assert _get(lake, "raw/alice/job-1/orders.jsonl") == b"original"


def test_oss_delete_prefix_removes_a_large_folder_in_batches_of_a_thousand(fake_oss: FakeOss) -> None:
    keys = [f"silver/alice/job-1/part-{n:05d}.parquet" for n in range(2345)]
    for key in [*keys, "silver/alice/job-10/kept.parquet"]:
        fake_oss.put_object("lake", key, b"x")
    lake = _oss(fake_oss, retries=0)

    lake.delete_prefix("silver/alice/job-1")

    assert sorted(fake_oss.buckets["lake"]) == ["silver/alice/job-10/kept.parquet"]
    assert [len(batch) for batch in fake_oss.batch_deletes] == [1000, 1000, 345]  # ceil(2345 / 1000)
    assert sorted(key for batch in fake_oss.batch_deletes for key in batch) == keys
    deletes = fake_oss.seen("POST", delete="")
    assert len(deletes) == 3 and all("content-md5" in seen.headers for seen in deletes)
    assert fake_oss.seen("DELETE") == []  # no DeleteObject per key
