"""`LiveServer`: the real `lender-sandbox serve` in a subprocess, for end-to-end tests.

It owns a working folder holding a config.toml written from test defaults (fast lifecycle
delays and callback retries, a quick scheduler tick), then a user's config file, then
overrides — on 127.0.0.1, a free port and, unless one is named, a SQLite file database of its
own; fixtures from the config's [fixtures] dir or the packaged ones — and the process:
`start()` waits for GET /sandbox/health, `stop()` sends SIGTERM (graceful), `kill()` sends
SIGKILL (a crash), `restart()` starts again on the same port and database. The pytest
plugin's `lender_sandbox_server` fixture wraps it.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx

from ..services.config import setting_variables

__all__ = [
    "TEST_SETTINGS",
    "LiveServer",
    "LiveServerError",
    "free_port",
    "merge_overrides",
    "to_toml",
]

# The folder this `sandbox` package was imported from (a checkout or site-packages): the
# server process imports the same one.
IMPORT_ROOT = Path(__file__).resolve().parents[2]

# What a test server runs with (a config file or overrides can change any of it): manual
# clocks, short lifecycle delays for a real/scaled clock, callback retries in fractions of a
# second, a fast tick.
TEST_SETTINGS: dict[str, dict[str, Any]] = {
    "clock": {"mode": "manual"},
    "lifecycle": {"review_delay": "10s", "payout_delay": "5s"},
    "callbacks": {
        "first_delay": 0.05,
        "factor": 2.0,
        "max_delay": 0.5,
        "jitter": 0.1,
        "max_attempts": 5,
        "timeout": 2.0,
    },
    "scheduler": {"tick": 0.05},
}


class LiveServerError(RuntimeError):
    """The server did not start (its log is in the message) or is not running."""


# ---- a tiny TOML writer (tomllib only reads) ----

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_string(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_key(k: str) -> str:
    return k if _BARE_KEY.fullmatch(k) else _toml_string(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"TOML: cannot write {v!r}")
        return repr(v)
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"TOML: cannot write a {type(v).__name__}")


def to_toml(sections: dict[str, dict[str, Any]]) -> str:
    """{section: {key: value}} -> TOML text (scalars, arrays and inline tables)."""
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{_toml_key(name)}]")
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in values.items()]
        lines.append("")
    return "\n".join(lines)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def merge_overrides(*layers: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Section-wise merge of settings, later layers winning."""
    out: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for section, values in (layer or {}).items():
            out.setdefault(section, {}).update(values)
    return out


def read_config(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """A config file's sections ({} without a file); a [fixtures] dir is made absolute from the
    file's folder, as `lender-sandbox serve` reads it ("" stays: the packaged fixtures)."""
    if not path:
        return {}
    try:
        raw = tomllib.loads(Path(path).read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise LiveServerError(f"config {path}: {e}") from None
    sections = {k: v for k, v in raw.items() if isinstance(v, dict)}
    given = sections.get("fixtures", {}).get("dir")
    if given:
        where = (Path(path).resolve().parent / given).resolve()
        sections["fixtures"] = {**sections["fixtures"], "dir": str(where)}
    return sections


# ---- the server process ----


class LiveServer:
    """`with LiveServer() as server: httpx.get(server.base_url + "/sandbox/health")`.

    Settings, later winning: TEST_SETTINGS, the `config` file (a config.toml; its [fixtures]
    dir is taken from the file's folder), `clock_mode`, `overrides` ({section: {key: value}}).
    The server always binds 127.0.0.1 on `port` (default: a free one). Its database is
    `database_url`, else the one the overrides or the config name, else a SQLite file in the
    working folder (kept across restart() and kill()); the server runs in that folder, so a
    relative SQLite path is a file there too. `workdir` defaults to a temporary folder
    removed by close()/exit."""

    def __init__(
        self,
        overrides: dict[str, dict[str, Any]] | None = None,
        *,
        config: str | Path | None = None,
        database_url: str | None = None,
        clock_mode: str | None = None,
        workdir: str | Path | None = None,
        port: int | None = None,
        startup_timeout: float = 30.0,
        env: dict[str, str] | None = None,
    ):
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="lender-sandbox-"))
        self.port = port or free_port()
        clock = {"clock": {"mode": clock_mode}} if clock_mode else None
        chosen = merge_overrides(TEST_SETTINGS, read_config(config), clock, overrides)
        self.database_url = (
            database_url
            or chosen.get("database", {}).get("url")
            or f"sqlite:///{self.workdir / 'sandbox.db'}"
        )
        given_fixtures = chosen.get("fixtures", {}).get("dir")
        self.settings = merge_overrides(
            chosen,
            {
                "server": {"host": "127.0.0.1", "port": self.port},
                "database": {"url": self.database_url},
            },
            # the server reads its config.toml in the working folder: no relative paths
            {"fixtures": {"dir": str(Path(given_fixtures).resolve())}} if given_fixtures else None,
        )
        self.config_path = self.workdir / "config.toml"
        self.log_path = self.workdir / "server.log"
        self.startup_timeout = startup_timeout
        self._env = env
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "") -> str:
        return self.base_url + "/" + path.lstrip("/")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ---- lifecycle ----

    def start(self) -> LiveServer:
        if self.running:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(to_toml(self.settings), "utf-8")
        self._log = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox",
                "serve",
                "--config",
                str(self.config_path),
                "--port",
                str(self.port),
            ],
            cwd=self.workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self._child_env(),
        )
        try:
            self._wait_healthy()
        except BaseException:
            self.kill()
            raise
        return self

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ if self._env is None else self._env)
        for name in setting_variables():  # the config file decides, not variables meant
            env.pop(name, None)  # for another sandbox
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(IMPORT_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _wait_healthy(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(timeout=0.5, trust_env=False) as client:
            while time.monotonic() < deadline:
                try:
                    if client.get(self.url("/sandbox/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                try:  # waiting on the process doubles as the pause between polls
                    code = self._proc.wait(0.05)
                except subprocess.TimeoutExpired:
                    continue
                raise LiveServerError(
                    f"the server exited with {code} while starting:\n{self.log()}"
                )
        raise LiveServerError(
            f"no answer on {self.base_url} after {self.startup_timeout}s:\n{self.log()}"
        )

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM: uvicorn shuts down gracefully (the callback worker hands back its leases)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL: a crash, mid-whatever-it-was-doing."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        self._reap()

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> LiveServer:
        """Stop if running, then start on the same port, config and database."""
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- conveniences ----

    def log(self) -> str:
        """The server's output so far."""
        try:
            return self.log_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One HTTP request to the server (e.g. the control API under /sandbox)."""
        kw.setdefault("timeout", 10.0)
        with httpx.Client(trust_env=False) as client:
            return client.request(method, self.url(path), **kw)
