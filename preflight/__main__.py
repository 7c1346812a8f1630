"""`python -m preflight`: the same program as the `preflight` command."""

from preflight.cli import main

main()
