"""Settings: the packaged defaults (one source with the repository's config.toml and fixtures/),
a file over them, LENDER_SANDBOX_* variables, overrides; `lender-sandbox defaults`."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

import sandbox
from sandbox import cli
from sandbox.core.settings import Settings
from sandbox.services import config
from sandbox.services.config import (
    DEFAULT_CONFIG,
    DEFAULTS,
    ConfigError,
    env_name,
    load_settings,
    setting_variables,
)

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED = ["config.toml", *(f"fixtures/{n}.toml" for n in config.FIXTURE_FILES)]


# ---- one source ----


@pytest.mark.parametrize("name", DOCUMENTED)
def test_the_repositorys_reference_files_are_the_packaged_ones(name):
    packaged = DEFAULTS.joinpath(*name.split("/"))
    assert (ROOT / name).read_bytes() == packaged.read_bytes()
    if os.name == "posix":  # git keeps them as links, so there is nothing to keep in step
        assert (ROOT / name).resolve() == (ROOT / "sandbox" / "defaults" / name).resolve()
        assert (ROOT / name.split("/")[0]).is_symlink()


def test_the_package_reads_its_defaults_from_itself_not_from_a_checkout():
    assert Path(str(DEFAULT_CONFIG)).parent == Path(sandbox.__file__).parent / "defaults"
    settings = load_settings(DEFAULT_CONFIG, env={})
    assert [p.partner_token for p in settings.partners] == ["demo"]
    assert {p.product_id for p in settings.data.products} == {"1001", "1002", "1003"}


def test_every_setting_is_documented_in_the_reference_with_the_models_default():
    documented = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    defaults = Settings().model_dump(exclude={"data"})
    assert set(documented) == set(defaults)
    for section, values in defaults.items():
        assert set(documented[section]) == set(values), section
    # the file's values, parsed, are the models' defaults: the two cannot drift
    parsed = Settings.model_validate(documented).model_dump(exclude={"data"})
    assert parsed == defaults


def test_a_file_needs_only_the_keys_it_changes(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text('[server]\nport = 9100\n[lifecycle]\nreview_delay = "1h"\n', "utf-8")
    s = load_settings(mine, env={})
    assert s.server.port == 9100 and s.server.host == "127.0.0.1"
    assert s.lifecycle.review_delay == 3600 and s.lifecycle.payout_delay == 60
    assert [p.partner_token for p in s.partners] == ["demo"]  # packaged fixtures


def test_a_relative_fixtures_dir_is_taken_from_the_files_folder(tmp_path):
    (tmp_path / "fx").mkdir()
    (tmp_path / "fx" / "partners.toml").write_text(
        '[[partners]]\npartner_token = "p1"\naes_key = "k"\naes_iv = "i"\n', "utf-8"
    )
    (tmp_path / "c.toml").write_text('[fixtures]\ndir = "fx"\n', "utf-8")
    s = load_settings(tmp_path / "c.toml", env={})
    assert [p.partner_token for p in s.partners] == ["p1"] and s.data.products == []


def test_a_missing_fixtures_dir_says_which_and_where_it_was_named(tmp_path):
    (tmp_path / "c.toml").write_text('[fixtures]\ndir = "nope"\n', "utf-8")
    with pytest.raises(ConfigError, match=r"c\.toml: \[fixtures\] dir .*nope is not a folder"):
        load_settings(tmp_path / "c.toml", env={})
    with pytest.raises(ConfigError, match="LENDER_SANDBOX_FIXTURES_DIR"):
        load_settings(DEFAULT_CONFIG, env={"LENDER_SANDBOX_FIXTURES_DIR": str(tmp_path / "x")})


# ---- the environment ----


def test_the_naming_rule():
    assert env_name("server", "host") == "LENDER_SANDBOX_HOST"
    assert env_name("server", "log_level") == "LENDER_SANDBOX_LOG_LEVEL"
    assert env_name("server", "admin_token") == "LENDER_SANDBOX_ADMIN_TOKEN"
    assert env_name("database", "url") == "LENDER_SANDBOX_DATABASE_URL"
    assert env_name("lifecycle", "review_delay") == "LENDER_SANDBOX_LIFECYCLE_REVIEW_DELAY"
    documented = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    every = {(s, k) for s, keys in documented.items() for k in keys}
    assert set(setting_variables().values()) == every  # every setting has its variable


def test_variables_set_any_setting_over_the_file(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text("[server]\nport = 9100\n[callbacks]\nmax_attempts = 3\n", "utf-8")
    env = {
        "LENDER_SANDBOX_PORT": "9200",
        "LENDER_SANDBOX_HOST": "0.0.0.0",
        "LENDER_SANDBOX_LOG_LEVEL": "warning",
        "LENDER_SANDBOX_ACCESS_LOG": "true",
        "LENDER_SANDBOX_CLOCK_MODE": "manual",
        "LENDER_SANDBOX_LIFECYCLE_REVIEW_DELAY": "2h30m",
        "LENDER_SANDBOX_CALLBACKS_ENCRYPT": "false",
        "LENDER_SANDBOX_SCENARIOS_SEED": "team-a",
        "LENDER_SANDBOX_SCHEDULER_TICK": "0.5",
        "LENDER_SANDBOX_PUBLIC_URL": "",  # empty: unset
        "LENDER_SANDBOX_URL": "http://elsewhere",  # the CLI's, not a setting
    }
    s = load_settings(mine, env=env)
    assert (s.server.port, s.server.host, s.server.log_level) == (9200, "0.0.0.0", "warning")
    assert s.server.access_log is True and s.clock.mode == "manual"
    assert s.lifecycle.review_delay == 9000 and s.callbacks.encrypt is False
    assert s.callbacks.max_attempts == 3  # the file's, no variable
    assert s.scenarios.seed == "team-a" and s.scheduler.tick == 0.5
    assert s.server.public_url == ""


def test_options_win_over_variables():
    s = load_settings(DEFAULT_CONFIG, {"server": {"port": 9300}}, env={"LENDER_SANDBOX_PORT": "1"})
    assert s.server.port == 9300


def test_a_bad_variable_is_named_in_the_error():
    with pytest.raises(ConfigError) as e:
        load_settings(DEFAULT_CONFIG, env={"LENDER_SANDBOX_PORT": "eighty"})
    assert "server.port (from LENDER_SANDBOX_PORT)" in str(e.value)
    with pytest.raises(ConfigError, match="LENDER_SANDBOX_LOG_LEVEL"):
        load_settings(DEFAULT_CONFIG, env={"LENDER_SANDBOX_LOG_LEVEL": "loud"})


# ---- the command line ----


@pytest.mark.parametrize("name", DOCUMENTED)
def test_defaults_prints_the_packaged_file(name):
    result = CliRunner().invoke(cli.main, ["defaults", name])
    assert result.exit_code == 0
    assert result.stdout == DEFAULTS.joinpath(*name.split("/")).read_text(encoding="utf-8")


def test_defaults_lists_the_files_and_refuses_others():
    listed = CliRunner().invoke(cli.main, ["defaults"])
    assert listed.stdout.split() == DOCUMENTED
    assert CliRunner().invoke(cli.main, ["defaults", "../pyproject.toml"]).exit_code == 2


def test_python_dash_m_sandbox_is_the_command():
    out = subprocess.run(
        [sys.executable, "-m", "sandbox", "--version"], capture_output=True, text=True, timeout=60
    )
    assert (
        out.returncode == 0
        and out.stdout.strip() == f"lender-sandbox, version {sandbox.__version__}"
    )


def test_the_changelog_names_the_version_the_command_prints():
    top = next(
        line
        for line in (ROOT / "CHANGELOG.md").read_text("utf-8").splitlines()
        if line.startswith("## ")
    )
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert top.split()[1] == project["version"]
    if sandbox.__version__ != "0+unknown":  # an installed package (pip install -e . too)
        assert sandbox.__version__ == project["version"]
