"""Settings, read from the environment (and a .env file) with pydantic-settings.

Names shared with lume-services use its spelling, so one deployment's
environment configures both: ``LUME_RESULTS_DB__HOST``, ``LUME_RESULTS_DB__PORT``,
``LUME_RESULTS_DB__USERNAME``, ``LUME_RESULTS_DB__PASSWORD``,
``LUME_RESULTS_DB__DATABASE``, ``LUME_RESULTS_DB__AUTHMECHANISM``, ``LUME_BACKEND``.
This package's own settings use the ``MY_PACKAGE_`` prefix.
"""

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

from my_package.errors import UserError

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
    # PV names of `serve` (the online model) are this prefix + the variable name.
    pv_prefix: str = Field(
        "MY_PACKAGE:", validation_alias=AliasChoices("MY_PACKAGE_PV_PREFIX", "pv_prefix")
    )

    # Arrays larger than this go to HDF5 files beside the result (bench/README.md: below
    # ~128 KiB the JSON text is written faster than an HDF5 file).
    file_threshold_bytes: int = Field(
        131072,
        ge=0,
        validation_alias=AliasChoices("MY_PACKAGE_FILE_THRESHOLD_BYTES", "file_threshold_bytes"),
    )


# --------------------------------------------------------------------------- loading

# Which settings each target reads: a bad value of any other one only warns.
_USED_BY = {
    "filesystem": {"target", "output_dir", "project_name"},
    "mongodb": {"target", "results_db", "project_name"},
}
# What to write instead, by setting: the fix half of an error message.
_FIXES = {
    "target": "use filesystem or mongodb",
    "output_dir": "give a directory path",
    "project_name": "use 1-64 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
    "backend": "use local, docker or kubernetes",
    "port": "use a whole number from 1 to 65535",
    "timeout_ms": "use a whole number of milliseconds, at least 100",
}
_SECRETS = {"password"}  # never echoed
_warned: set[str] = set()  # warn once per process, however often settings are loaded


class SettingsError(UserError):
    """A setting from the environment or .env that cannot be used; names the variable."""


def env_name(loc: tuple[str | int, ...]) -> str:
    """The environment variable behind a pydantic error location, e.g. LUME_RESULTS_DB__PORT."""
    head = str(loc[0])
    if head.startswith("MY_PACKAGE_"):  # aliased fields report their alias
        return head
    field = Settings.model_fields.get(head)
    if field is not None and field.validation_alias is not None:
        return str(field.validation_alias.choices[0])  # type: ignore[union-attr]
    return "__".join(["LUME_" + head.upper(), *(str(part).upper() for part in loc[1:])])


def _field(loc: tuple[str | int, ...]) -> str:
    """The top-level field name of an error location (aliases mapped back)."""
    head = str(loc[0])
    for name, field in Settings.model_fields.items():
        if field.validation_alias is not None and head in field.validation_alias.choices:  # type: ignore[union-attr]
            return name
    return head


def _message(error: Any) -> str:
    loc = tuple(error["loc"])
    leaf = str(loc[-1])
    # The value helps, unless it is a secret (or a whole JSON block that may hold one).
    secret = leaf in _SECRETS or loc == ("results_db",)
    value = "" if secret or not isinstance(error["input"], str) else f"={error['input']!r}"
    fix = _FIXES.get(leaf) or _FIXES.get(_field(loc)) or error["msg"][0].lower() + error["msg"][1:]
    return f"setting {env_name(loc)}{value} (environment or .env) is not valid: {fix}"


def _warn(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        print(f"warning: {message}", file=sys.stderr)


def load_settings(target: str | None = None, output_dir: str | None = None) -> Settings:
    """The settings, with command-line values beating the environment and .env.

    ``target`` and ``output_dir`` are the command line's ``--target`` and
    ``--output-dir`` (None: not given). A bad value of a setting the chosen target
    does not read is a warning (once), not an error. Raises SettingsError naming
    the environment variable, never a secret value.
    """
    overrides: dict[str, Any] = {}
    if target is not None:
        overrides["target"] = target
    if output_dir is not None:
        overrides["output_dir"] = output_dir
    try:
        return Settings(**overrides)
    except PydanticSettingsError as exc:
        # The JSON form (LUME_RESULTS_DB='{...}') failed to parse; its text may hold a password.
        field = str(exc).split('"')[1] if '"' in str(exc) else "results_db"
        raise SettingsError(
            f"setting {env_name((field,))} (environment or .env) is not valid JSON; "
            f"set {env_name((field, 'host'))} and its siblings instead, or unset it"
        ) from None
    except ValidationError as exc:
        errors = exc.errors()
    chosen = overrides.get("target")
    if chosen is None:  # the target itself may be the bad setting
        bad_target = [e for e in errors if _field(tuple(e["loc"])) == "target"]
        if bad_target:
            raise SettingsError(_message(bad_target[0])) from None
        chosen = Settings.model_fields["target"].default
        chosen = _target_from_env() or chosen
    used = _USED_BY[chosen]
    fatal = [e for e in errors if _field(tuple(e["loc"])) in used]
    if fatal:
        raise SettingsError(_message(fatal[0])) from None
    for error in errors:
        _warn(f"{_message(error)}; ignored, the {chosen} target does not use it")
        overrides[_field(tuple(error["loc"]))] = Settings.model_fields[
            _field(tuple(error["loc"]))
        ].get_default(call_default_factory=True)
    return Settings(**overrides)


def _target_from_env() -> str | None:
    """The target that the environment chose, when only other settings are bad."""
    try:
        return Settings(results_db=ResultsDBSettings(), backend="local").target
    except ValidationError:
        return None
