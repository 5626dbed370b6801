"""The Python clients (`sandbox.harness.client`), under the name users import them by."""

from .harness.client import *  # noqa: F403
from .harness.client import __all__  # noqa: F401
