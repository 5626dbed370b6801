"""`python -m sandbox`: the `lender-sandbox` command."""

from .cli import main

main()
