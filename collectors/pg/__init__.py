"""Capture at the database (docs/contract.md §6): a PostgreSQL trigger records every row
change of a table as transitions; `pull` copies them into the store, each exactly once."""

from collectors.pg.capture import Installed, install, uninstall
from collectors.pg.pull import pull

__all__ = ["Installed", "install", "pull", "uninstall"]
