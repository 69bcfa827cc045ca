"""`python -m audit.cli` runs the command line."""

from audit.cli import main

main()
