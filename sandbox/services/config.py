"""Reading the settings: the packaged defaults, a config file, the environment and overrides,
into a `Settings`; fixtures from a folder (the packaged ones by default).

The defaults ship inside the package (`sandbox/defaults/config.toml` and
`sandbox/defaults/fixtures/*.toml`, read with `importlib.resources`, so a wheel carries them);
the repository's `config.toml` and `fixtures/` are links to those same files. Layers, later
winning: the packaged config.toml, the given (or ./config.toml) file, `LENDER_SANDBOX_*`
variables (`env_name`), `overrides`. Nothing is read at import: `load_settings` builds a
fresh `Settings`, so every app, test and fixture has its own.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ..core.settings import Fixtures, Settings

DEFAULTS: Traversable = files("sandbox") / "defaults"
DEFAULT_CONFIG: Traversable = DEFAULTS / "config.toml"
DEFAULT_FIXTURES: Traversable = DEFAULTS / "fixtures"
FIXTURE_FILES = ("partners", "products", "banks", "scenarios")
ENV_PREFIX = "LENDER_SANDBOX_"

Source = Path | Traversable


class ConfigError(Exception):
    pass


def _read_toml(path: Source) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a folder, not a config file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None


def _validated(
    model: type[BaseModel], raw: dict[str, Any], where: Source, origin: Mapping[str, str] = {}
) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc = ".".join(map(str, err["loc"]))
            source = f" (from {origin[loc]})" if loc in origin else ""
            lines.append(f"  {loc}{source}: {err['msg']}")
        raise ConfigError(f"{where}: invalid settings\n" + "\n".join(lines)) from None


# ---- fixtures ----


def fixtures_folder(given: str | Path | None, base: Path | None = None) -> Traversable:
    """The fixtures folder a `[fixtures] dir` names: "" (or None) is the packaged one; a
    relative path is taken from `base` (the folder of the file that named it)."""
    if not given:
        return DEFAULT_FIXTURES
    folder = Path(given)
    return folder if folder.is_absolute() or base is None else base / folder


def load_fixtures(folder: Traversable | str | Path = DEFAULT_FIXTURES) -> Fixtures:
    """partners/products/banks/scenarios.toml of `folder` (a missing file is empty)."""
    folder = Path(folder) if isinstance(folder, str) else folder
    raw: dict[str, Any] = {}
    for name in FIXTURE_FILES:
        path = folder / f"{name}.toml"
        if path.is_file():
            raw.update(_read_toml(path))
    return _validated(Fixtures, raw, folder)


# ---- the environment ----


def env_name(section: str, key: str) -> str:
    """The variable of a setting: LENDER_SANDBOX_<KEY> for [server] keys (HOST, PORT,
    LOG_LEVEL, ADMIN_TOKEN, ...), LENDER_SANDBOX_<SECTION>_<KEY> for every other section
    (DATABASE_URL, CLOCK_MODE, LIFECYCLE_REVIEW_DELAY, CALLBACKS_MAX_ATTEMPTS, ...)."""
    return ENV_PREFIX + (key if section == "server" else f"{section}_{key}").upper()


def setting_variables() -> dict[str, tuple[str, str]]:
    """Every settings variable: name -> (section, key)."""
    out = {}
    for section, field in Settings.model_fields.items():
        model = field.annotation
        if section == "data" or not isinstance(model, type) or not issubclass(model, BaseModel):
            continue
        for key in model.model_fields:
            out[env_name(section, key)] = (section, key)
    return out


def env_settings(environ: Mapping[str, str]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """({section: {key: text}}, {"section.key": variable}) of the variables set and non-empty;
    pydantic turns the text into the setting's type ("8000", "true", "2h")."""
    found: dict[str, dict[str, str]] = {}
    origin = {}
    for name, (section, key) in setting_variables().items():
        if environ.get(name):
            found.setdefault(section, {})[key] = environ[name]
            origin[f"{section}.{key}"] = name
    return found, origin


# ---- settings ----


def resolve_config_path(path: str | Path | None) -> Source:
    """--config, else ./config.toml, else the packaged default config."""
    if path:
        return Path(path)
    local = Path("config.toml")
    return local if local.is_file() else DEFAULT_CONFIG


def _merge(raw: dict[str, Any], layer: Mapping[str, Mapping[str, Any]]) -> None:
    for section, values in layer.items():
        if isinstance(values, Mapping):
            raw.setdefault(section, {}).update(values)
        else:  # not a table: let validation name it
            raw[section] = values


def load_settings(
    path: str | Source | None = None,
    overrides: dict[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """The packaged defaults, then the file (`resolve_config_path`), then the LENDER_SANDBOX_*
    variables of `env` (default os.environ), then `overrides` ({section: {key: value}});
    fixtures from the resulting [fixtures] dir."""
    source = resolve_config_path(path) if path is None or isinstance(path, str) else path
    raw = _read_toml(DEFAULT_CONFIG)
    if source != DEFAULT_CONFIG:
        _merge(raw, _read_toml(source))
    from_env, origin = env_settings(os.environ if env is None else env)
    _merge(raw, from_env)
    _merge(raw, overrides or {})
    settings = _validated(Settings, raw, source, origin)
    settings.data = load_fixtures(_fixtures_of(settings, source, from_env))
    if problem := settings.token_problem():
        raise ConfigError(f"partners.toml: {problem}")
    return settings


def _fixtures_of(settings: Settings, source: Source, from_env: dict[str, Any]) -> Traversable:
    """A relative [fixtures] dir is taken from the file's folder, or from the current folder
    when a variable named it."""
    named_by_env = "dir" in from_env.get("fixtures", {})
    base = Path.cwd() if named_by_env or not isinstance(source, Path) else source.resolve().parent
    folder = fixtures_folder(settings.fixtures.dir, base)
    if not folder.is_dir():
        where = "LENDER_SANDBOX_FIXTURES_DIR" if named_by_env else source
        raise ConfigError(f"{where}: [fixtures] dir {folder} is not a folder")
    return folder


def redacted_url(url: str) -> str:
    """A database URL to print: its password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL SQLAlchemy reads: print nothing of it
        return "(unreadable database URL)"
