"""The error every stage raises for a problem the user can fix.

The CLI prints its message on one line (no traceback) and exits non-zero.
"""


class FactoryError(Exception):
    """A problem with input, environment or a command, described for the user."""
