"""Reading the settings: config.toml and fixtures/*.toml into a `Settings`, with env overrides.

Nothing is read at import: `load_settings(path)` builds a fresh `Settings`, so every app,
test and fixture has its own.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..core.settings import Fixtures, Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "config.toml"


class ConfigError(Exception):
    pass


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None


def _validated(model: type[BaseModel], raw: dict[str, Any], where: Path) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        lines = [f"  {'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()]
        raise ConfigError(f"{where}: invalid settings\n" + "\n".join(lines)) from None


def load_fixtures(folder: Path) -> Fixtures:
    raw: dict[str, Any] = {}
    for name in ("partners", "products", "banks", "scenarios"):
        path = folder / f"{name}.toml"
        if path.exists():
            raw.update(_read_toml(path))
    return _validated(Fixtures, raw, folder)


def resolve_config_path(path: str | Path | None) -> Path:
    """--config, else ./config.toml, else the repository's default config."""
    if path:
        return Path(path)
    local = Path("config.toml")
    return local if local.exists() else DEFAULT_CONFIG


def load_settings(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Read config + fixtures; `overrides` is merged over the file (section -> key -> value)."""
    path = resolve_config_path(path)
    raw = _read_toml(path)
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    environ: Mapping[str, str] = os.environ if env is None else env
    if environ.get("LENDER_SANDBOX_DATABASE_URL"):
        raw.setdefault("database", {})["url"] = environ["LENDER_SANDBOX_DATABASE_URL"]
    if environ.get("LENDER_SANDBOX_ADMIN_TOKEN"):
        raw.setdefault("server", {})["admin_token"] = environ["LENDER_SANDBOX_ADMIN_TOKEN"]
    given = raw.get("fixtures", {}).get("dir", "")
    # No [fixtures] dir: the repository's fixtures, so a config.toml that only changes a few
    # settings works from any folder.
    fixtures_dir = Path(given) if given else REPO_ROOT / "fixtures"
    if not fixtures_dir.is_absolute():
        fixtures_dir = path.resolve().parent / fixtures_dir
    if not fixtures_dir.is_dir():
        raise ConfigError(f"{path}: [fixtures] dir {fixtures_dir} is not a folder")
    settings = _validated(Settings, raw, path)
    settings.data = load_fixtures(fixtures_dir)
    return settings
