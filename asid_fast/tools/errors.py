"""The one exception type for user mistakes: the CLI prints its message, never a traceback."""


class UserError(Exception):
    """A problem the user can fix (bad path, bad option, mismatched checkpoint...)."""

    quiet = False  # True where another process of the same torchrun job shows the message
