"""The pytest plugin (entry point `pytest11`): its fixtures live in `sandbox.harness.plugin`."""

from .harness.plugin import *  # noqa: F403
from .harness.plugin import (  # noqa: F401
    lender_sandbox,
    lender_sandbox_intercept,
    lender_sandbox_server,
    lender_sandbox_server_session,
    lender_sandbox_template,
    pytest_addoption,
)
