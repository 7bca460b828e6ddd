"""The one place that reads configuration: the environment first, then .streamlit/secrets.toml.

Every setting has an environment name (``ORCHESTRATOR_...``); the same names may be written as top-level
keys of the secrets file. Secrets are held in fields excluded from repr() and never logged. The routing
threshold and the schedules (EDITABLE) may also be stored by an administrator on the Settings page, in the job
store's database; the environment and the secrets file win over a stored value.
"""

from __future__ import annotations

import os
import ssl
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import REPOSITORY
from orchestrator.clouds import CLOUDS, PROFILES
from orchestrator.errors import InvalidInput

if TYPE_CHECKING:
    from orchestrator.jobs.store import StoredSetting

DATA_DIR_ENV = "ORCHESTRATOR_DATA_DIR"
SECRETS_FILE_ENV = "ORCHESTRATOR_SECRETS_FILE"
# Found from the repository, not the working folder: a start from another folder must reach the same users,
# jobs and secrets, never an empty store of its own.
DEFAULT_DATA_DIR = REPOSITORY / "data"
DEFAULT_SECRETS_FILE = REPOSITORY / ".streamlit" / "secrets.toml"
PRIVATE_UMASK = 0o077  # files 0600, folders 0700: the data root holds password hashes and sample rows
# Where the spark engine runs the notebook: a local Spark child process, Databricks, the Data Factory
# pipeline, or this process's own Spark session (a scheduled drain on a cluster: notebooks/drain_queue.py).
SPARK_RUNNERS = ("local", "databricks", "datafactory", "emr-serverless", "session")
SECRET_NAMES = (
    "ORCHESTRATOR_MYSQL_PASSWORD",
    "ORCHESTRATOR_AZURE_STORAGE_KEY",
    "ORCHESTRATOR_AZURE_STORAGE_CONNECTION_STRING",
    "ORCHESTRATOR_AZURE_FUNCTIONS_KEY",
    "ORCHESTRATOR_ALIYUN_ACCESS_KEY_SECRET",
    "ORCHESTRATOR_ALIYUN_SECURITY_TOKEN",
    "DATABRICKS_TOKEN",
    "AZURE_CLIENT_SECRET",
    "ORCHESTRATOR_COOKIE_KEY",
    "ORCHESTRATOR_SETUP_TOKEN",
)


@dataclass(frozen=True)
class MySQLSettings:
    """Where the MySQL (or MariaDB) database lives and how it is reached; the database must exist, the tables
    are created."""

    host: str
    database: str
    user: str
    password: str = field(default="", repr=False)
    port: int = 3306
    ssl_required: bool = False  # refuse a server that does not offer TLS
    ssl_verify: bool = False  # check the server's certificate and host name (requires TLS)
    ssl_ca: str = ""  # the CA file that signs the server's certificate; empty: the system's CAs

    def connect_args(self) -> dict[str, Any]:
        """pymysql.connect's arguments for this server, TLS included: the one way the job store and the
        operational database connect to it."""
        args: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "database": self.database,
        }
        if self.ssl_required or self.ssl_verify:
            context = ssl.create_default_context(cafile=self.ssl_ca or None)
            if not self.ssl_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            args["ssl"] = context  # with a context, pymysql refuses a server that does not offer TLS
        return args


@dataclass(frozen=True)
class AzureStorageSettings:
    """The storage account behind the lake (ADLS Gen2) and the queues, and the function app that cleans small
    batches; secrets excluded from repr()."""

    file_system: str
    account_url: str = ""
    queue_url: str = ""
    account_key: str = field(default="", repr=False)
    connection_string: str = field(default="", repr=False)
    # the function app (https://APP.azurewebsites.net) whose HTTP trigger drains now; out of repr() too, as a
    # URL pasted with its ?code= carries a key (the client refuses it, naming the setting)
    functions_url: str = field(default="", repr=False)
    functions_key: str = field(default="", repr=False)  # a function key of that trigger


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of one process."""

    data_dir: Path
    profile: str = "local"
    small_batch_max_rows: int = 10_000
    small_every_minutes: int = 10
    large_daily_at_utc: str = "02:00"
    max_active_generations: int = 2  # per user: each generation is a process that keeps a core busy
    mysql: MySQLSettings | None = None
    job_store: str = "sqlite"  # where job records live: "sqlite" (state folder) or "mysql"
    cloud_settings: Any = None  # the profile's own settings, as its entry in orchestrator.clouds reads them
    # every cloud a job may live on (ORCHESTRATOR_CLOUDS), with its settings; the profile is the default one
    clouds: Mapping[str, Any] = field(default_factory=lambda: {"local": None})
    spark_runner: str = "local"  # one of SPARK_RUNNERS; empty where the profile's cloud has none yet
    cluster_lake_root: str = ""  # the lake's root as a cluster's notebook sees it (databricks, datafactory)
    profile_after_cleaning: bool = True  # profile silver (and its raw) in the background after a cleaning

    @property
    def azure_storage(self) -> AzureStorageSettings | None:
        """The Azure storage account of the azure profile; None on any other."""
        return self.cloud_settings if isinstance(self.cloud_settings, AzureStorageSettings) else None

    def on_cloud(self, name: str | None) -> Settings:
        """These settings as a job living on cloud ``name`` uses them: that cloud's lake, queues and runners
        (its own large-batch runner; ORCHESTRATOR_SPARK_RUNNER chooses for the default cloud). None, or the
        default cloud's name, gives these settings."""
        if name is None or name == self.profile:
            return self
        if name not in self.clouds:
            raise InvalidInput(
                "cloud",
                f"{name!r} is not one of the configured clouds ({', '.join(self.clouds)}); add it to "
                "ORCHESTRATOR_CLOUDS with its settings",
            )
        return replace(
            self,
            profile=name,
            cloud_settings=self.clouds[name],
            spark_runner=CLOUDS[name].large_batches or "",
        )

    def for_lake(self) -> Settings:
        """Only what opening this profile's lake and reading value pools need: no database, no other cloud, no
        function key. What leaves this process with work for other machines (generation's Spark tasks)."""
        lake = self.cloud_settings
        if isinstance(lake, AzureStorageSettings):
            lake = replace(lake, functions_url="", functions_key="")
        return Settings(
            data_dir=self.data_dir, profile=self.profile, cloud_settings=lake, clouds={self.profile: lake}
        )

    @property
    def state_dir(self) -> Path:
        """SQLite state of the embedded profile: queues, jobs, users."""
        return self.data_dir / "state"

    @property
    def pool_cache_dir(self) -> Path:
        """Where value pools built with Faker are cached, by locale and Faker version (those of the pinned
        Faker ship with the code, so this stays empty unless Faker is upgraded)."""
        return self.data_dir / "cache" / "pools"


@cache
def _secrets_file(path: str) -> dict:
    file = Path(path)
    if not file.is_file():
        return {}
    with file.open("rb") as handle:
        data = tomllib.load(handle)
    return {**data.get("orchestrator", {}), **{k: v for k, v in data.items() if not isinstance(v, dict)}}


def _secrets() -> dict:
    """The settings in the secrets file (ORCHESTRATOR_SECRETS_FILE, else the repository's
    .streamlit/secrets.toml, whichever folder the process started in)."""
    return _secrets_file(os.environ.get(SECRETS_FILE_ENV) or str(DEFAULT_SECRETS_FILE))


def lookup(name: str, default: str = "") -> str:
    """A setting by its environment name: the environment wins over the secrets file."""
    if os.environ.get(name):
        return os.environ[name]
    value = _secrets().get(name, default)
    return str(value) if value is not None else default


class Lookup(Mapping[str, str]):
    """Every setting by its environment name, as ``lookup`` finds it, for adapters that read their own
    (the Databricks and Data Factory runners); unset settings are absent."""

    def __getitem__(self, name: str) -> str:
        value = lookup(name)
        if not value:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(name for name in {*os.environ, *_secrets()} if lookup(name)))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def secret_status() -> dict[str, bool]:
    """Which secrets are set (never their values), for the settings page."""
    return {name: bool(lookup(name)) for name in SECRET_NAMES}


def whole_number(name: str, text: str, low: int, high: int) -> int:
    """``text`` as a whole number in [low, high]; anything else names the setting and its range."""
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise InvalidInput(name, f"must be a whole number from {low:,} to {high:,} (got {text!r})")
    return value


def int_setting(name: str, default: int, low: int, high: int) -> int:
    """A whole-number setting in [low, high]; anything else names the setting and its range."""
    return whole_number(name, lookup(name, str(default)), low, high)


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = lookup(name, default)
    if value not in choices:
        raise InvalidInput(name, f"must be one of {', '.join(choices)} (got {value!r})")
    return value


def _flag(name: str, default: bool) -> bool:
    """A yes/no setting: true/false, yes/no, on/off or 1/0, empty for the default; anything else names the
    setting."""
    text = lookup(name) or ("true" if default else "false")
    word = text.strip().lower()
    if word not in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        raise InvalidInput(name, f"must be true or false (got {text!r})")
    return word in ("true", "yes", "on", "1")


def daily_time(name: str, text: str) -> str:
    """``text`` as a UTC time of day, HH:MM; anything else names the setting and the form it takes."""
    hours, _, minutes = text.partition(":")
    if not (
        hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60 and len(minutes) == 2
    ):
        raise InvalidInput(name, f"must be a UTC time as HH:MM, such as 02:00 (got {text!r})")
    return text.zfill(5)


def _mysql(profile: str) -> MySQLSettings | None:
    """The MySQL server, if a host is set. TLS is required and the server's certificate verified by default on
    a cloud whose managed MySQL offers TLS (azure, aliyun: the table's database_tls) and when a CA file is
    set."""
    host = lookup("ORCHESTRATOR_MYSQL_HOST")
    if not host:
        return None
    ca = lookup("ORCHESTRATOR_MYSQL_SSL_CA")
    if ca and not Path(ca).expanduser().is_file():
        raise InvalidInput("ORCHESTRATOR_MYSQL_SSL_CA", f"no CA file at {ca!r}")
    by_default = CLOUDS[profile].database_tls or bool(ca)
    required = _flag("ORCHESTRATOR_MYSQL_SSL", by_default)
    return MySQLSettings(
        host=host,
        database=lookup("ORCHESTRATOR_MYSQL_DATABASE", "workbench"),
        user=lookup("ORCHESTRATOR_MYSQL_USER", "root"),
        password=lookup("ORCHESTRATOR_MYSQL_PASSWORD"),
        port=int_setting("ORCHESTRATOR_MYSQL_PORT", 3306, 1, 65535),
        ssl_required=required,
        ssl_verify=_flag("ORCHESTRATOR_MYSQL_SSL_VERIFY", required and by_default),
        ssl_ca=str(Path(ca).expanduser()) if ca else "",
    )


@dataclass(frozen=True)
class Editable:
    """A setting administrators may also change on the Settings page, stored in the job store's database so
    that every process of the deployment sees it; a value in the environment or the secrets file wins."""

    name: str  # its environment name, which also names it in messages
    field: str  # its attribute of Settings, whose default is its default
    label: str  # how the Settings page names it
    bounds: tuple[int, int] | None = None  # a whole number in this range; None: a UTC time of day, HH:MM

    @property
    def default(self) -> int | str:
        """The value when neither the environment nor an administrator sets it."""
        return getattr(Settings, self.field)  # a dataclass keeps a field's default as its class attribute

    @property
    def hint(self) -> str:
        """What the setting takes, as a form says it."""
        if self.bounds is None:
            return "a UTC time as HH:MM, such as 02:00"
        return f"a whole number from {self.bounds[0]:,} to {self.bounds[1]:,}"

    def value_of(self, text: str) -> int | str:
        """The value ``text`` stands for, checked as the environment's is; a bad one names the setting."""
        if self.bounds is None:
            return daily_time(self.name, text)
        return whole_number(self.name, text, *self.bounds)


EDITABLE = (
    Editable(
        "ORCHESTRATOR_SMALL_BATCH_MAX_ROWS",
        "small_batch_max_rows",
        "small-batch limit (rows)",
        (1, 100_000_000),
    ),
    Editable(
        "ORCHESTRATOR_SMALL_EVERY_MINUTES",
        "small_every_minutes",
        "small batches every (minutes)",
        (1, 24 * 60),
    ),
    Editable("ORCHESTRATOR_LARGE_DAILY_AT_UTC", "large_daily_at_utc", "large batches daily at (UTC)"),
)
ENVIRONMENT, STORED, DEFAULT = "environment", "stored", "default"  # where an editable setting's value is from


@dataclass(frozen=True)
class EditableValue:
    """An editable setting's value now, and where it comes from."""

    setting: Editable
    value: int | str
    source: str  # ENVIRONMENT (the environment or the secrets file), STORED or DEFAULT
    stored: StoredSetting | None = None  # who stored it and when, if it comes from the store


def editable_values(settings: Settings) -> list[EditableValue]:
    """The EDITABLE settings as they hold now: the environment or the secrets file wins, then the value an
    administrator stored in ``settings``' job store (read again at most every few seconds), then the
    default."""
    from orchestrator.jobs.store import read_stored_settings  # here: the job store imports this module

    stored = read_stored_settings(settings)
    values = []
    for setting in EDITABLE:
        if text := lookup(setting.name):
            values.append(EditableValue(setting, setting.value_of(text), ENVIRONMENT))
        elif kept := stored.get(setting.name):
            values.append(EditableValue(setting, setting.value_of(kept.value), STORED, kept))
        else:
            values.append(EditableValue(setting, setting.default, DEFAULT))
    return values


def _spark_runner(default: str | None) -> str:
    """The runner large batches take: ORCHESTRATOR_SPARK_RUNNER, else the profile's cloud's own (empty if it
    has none yet, which spark_target then names)."""
    if lookup("ORCHESTRATOR_SPARK_RUNNER") or default:
        return _choice("ORCHESTRATOR_SPARK_RUNNER", default or "", SPARK_RUNNERS)
    return ""


def _clouds(profile: str) -> dict[str, Any]:
    """The clouds jobs may live on, each with its own settings: ORCHESTRATOR_CLOUDS (comma-separated), by
    default the profile's alone; the profile, the default cloud of a new job, must be one of them."""
    names = [name.strip() for name in lookup("ORCHESTRATOR_CLOUDS", profile).split(",") if name.strip()]
    for name in names:
        if name not in CLOUDS:
            raise InvalidInput(
                "ORCHESTRATOR_CLOUDS", f"{name!r} is not a cloud; name some of {', '.join(PROFILES)}"
            )
    if profile not in names:
        raise InvalidInput(
            "ORCHESTRATOR_CLOUDS",
            f"does not name {profile!r}, the default cloud (ORCHESTRATOR_PROFILE); add it, or change the "
            "profile",
        )
    return {name: CLOUDS[name].read_settings() for name in dict.fromkeys(names)}


def get_settings() -> Settings:
    """Read the configuration now (cheap: the stored settings are kept for a few seconds; tests change the
    environment between calls)."""
    profile = _choice("ORCHESTRATOR_PROFILE", "local", PROFILES)
    cloud = CLOUDS[profile]
    clouds = _clouds(profile)
    settings = Settings(
        data_dir=Path(lookup(DATA_DIR_ENV, str(DEFAULT_DATA_DIR))).expanduser().resolve(),
        profile=profile,
        max_active_generations=int_setting("ORCHESTRATOR_MAX_ACTIVE_GENERATIONS", 2, 1, 64),
        mysql=_mysql(profile),
        job_store=_choice("ORCHESTRATOR_JOB_STORE", "sqlite", ("sqlite", "mysql")),
        cloud_settings=clouds[profile],
        clouds=clouds,
        spark_runner=_spark_runner(cloud.large_batches),
        cluster_lake_root=lookup("ORCHESTRATOR_CLUSTER_LAKE_ROOT"),
        profile_after_cleaning=_flag("ORCHESTRATOR_PROFILE_AFTER_CLEANING", True),
    )
    return replace(settings, **{value.setting.field: value.value for value in editable_values(settings)})


def private_data_root(settings: Settings) -> Path:
    """Make this process create files for its owner alone, and the data root (created if missing, or made so
    if an older start left it open) readable by its owner alone, so nothing under it is reachable by others.
    Every entry point calls this before it writes."""
    os.umask(PRIVATE_UMASK)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)
    return settings.data_dir
