"""`python -m regops` is the `regops` command (for a venv whose scripts are not on PATH)."""

from regops.cli import main

main()
