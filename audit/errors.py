"""The one exception type meant for users: its message is printed as a single line."""


class AuditError(Exception):
    """A problem the user can fix (missing file, bad option, locked database).

    The CLI prints ``error: <message>`` on stderr and exits with status 2, never a traceback.
    """


def first_line(exc: BaseException) -> str:
    """An exception as one line of text, for one-line error messages."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
