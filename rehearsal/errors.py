"""The rehearsal's one error type: its message is shown as is, without a traceback."""


class RehearsalError(Exception):
    """A failure the user can act on; str(error) says what failed and what to do."""
