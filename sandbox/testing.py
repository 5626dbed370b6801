"""The test harness (`sandbox.harness.sandbox` and `.server`), under the name users import it by."""

from .harness.sandbox import *  # noqa: F403
from .harness.sandbox import __all__ as _in_process
from .harness.server import *  # noqa: F403
from .harness.server import __all__ as _server

__all__ = [*_in_process, *_server]
