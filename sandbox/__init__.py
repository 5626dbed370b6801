"""Lender Sandbox: a stateful mock lender for the Indonesian partner lending API.

The package's layers, each importing only those below it (docs/architecture.md):
`core` (pure) <- `store` <- `services` <- `web` <- `cli`; `harness` (test harness, clients,
pytest plugin) sits on `services` and `web`.
"""

from importlib import metadata

try:
    __version__ = metadata.version("lender-sandbox")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
