"""`python -m frontends.cli` runs the command line."""

from frontends.cli import main

main()
