"""Capture at the database (docs/contract.md §6): a PostgreSQL trigger records every row
change of a table; `pull` turns them into transitions and copies them into the store, each
exactly once."""

from collectors.pg.capture import install, uninstall
from collectors.pg.pull import pull
from collectors.pg.transitions import Installation

__all__ = ["Installation", "install", "pull", "uninstall"]
