"""The one exception type for problems a user can fix.

Raise `UserError` (or a subclass) with a message that names the offending thing (file, line, option, model) and
says what to do. The command line prints it as a single line ``error: <message>`` and exits with code 2; a
traceback is shown only with ``--debug``. Anything else that escapes is a bug in streamact.
"""

__all__ = ["UserError"]


class UserError(Exception):
    """A problem with the user's input, files or options; the message says what to do about it."""
