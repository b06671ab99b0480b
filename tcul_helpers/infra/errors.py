"""The kit's error type for bad input: one line that names the problem and the fix."""


class TCULError(ValueError):
    """Bad input or an impossible request. The message names the problem and the fix.

    The command line turns it into a one-line message and exit code 2.
    """
