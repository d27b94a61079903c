"""Settings, read from the environment (and a .env file) with pydantic-settings.

Names shared with lume-services use its spelling, so one deployment's
environment configures both: ``LUME_RESULTS_DB__HOST``, ``LUME_RESULTS_DB__PORT``,
``LUME_RESULTS_DB__USERNAME``, ``LUME_RESULTS_DB__PASSWORD``,
``LUME_RESULTS_DB__DATABASE``, ``LUME_RESULTS_DB__AUTHMECHANISM``, ``LUME_BACKEND``.
This package's own settings use the ``MY_PACKAGE_`` prefix.
"""

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

TargetName = Literal["filesystem", "mongodb"]


class ResultsDBSettings(BaseModel):
    """Connection to the MongoDB results database (lume-services' ``results_db``)."""

    host: str = "localhost"
    port: int = Field(27017, ge=1, le=65535)
    username: str | None = None
    # SecretStr: printing the settings shows '**********', never the password.
    password: SecretStr | None = None
    database: str = "results"
    authmechanism: str = "DEFAULT"
    # Short timeouts: a server that is down fails a run in seconds, not in 30 s.
    timeout_ms: int = Field(3000, ge=100)


class MountedFilesystemSettings(BaseModel):
    """Where the MongoDB target keeps large arrays (lume-services' ``mounted_filesystem``).

    ``mount_path`` is the directory as this process sees it; ``mount_alias`` is the
    path written into results (what lume-services' containers see), default the same.
    Unset: the MongoDB target stores every array inside its document.
    """

    mount_path: Path | None = None
    mount_alias: str | None = None
    mount_type: Literal["Directory", "DirectoryOrCreate"] = "DirectoryOrCreate"


class Settings(BaseSettings):
    """Everything a run reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="LUME_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
    )

    results_db: ResultsDBSettings = ResultsDBSettings()
    mounted_filesystem: MountedFilesystemSettings = MountedFilesystemSettings()
    backend: Literal["local", "docker", "kubernetes"] = "local"

    # This package's own settings.
    target: TargetName = Field(
        "filesystem", validation_alias=AliasChoices("MY_PACKAGE_TARGET", "target")
    )
    output_dir: Path = Field(
        Path("results"), validation_alias=AliasChoices("MY_PACKAGE_OUTPUT_DIR", "output_dir")
    )
    # Result collection (lume-services' ``project_name``): MongoDB collection,
    # or sub-directory of output_dir.
    project_name: str = Field(
        "my_package",
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$",
        validation_alias=AliasChoices("MY_PACKAGE_PROJECT_NAME", "project_name"),
    )
    # Arrays larger than this go to HDF5 files beside the result (bench/README.md: below
    # ~128 KiB the JSON text is written faster than an HDF5 file).
    file_threshold_bytes: int = Field(
        131072,
        ge=0,
        validation_alias=AliasChoices("MY_PACKAGE_FILE_THRESHOLD_BYTES", "file_threshold_bytes"),
    )
