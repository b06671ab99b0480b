"""The kit's error type for bad input: one line that names the problem and the fix."""


class TCULError(ValueError):
    """Bad input or an impossible request. The message names the problem and the fix.

    The command line turns it into a one-line message and exit code 2.
    """


#: How PyTorch's DataLoader re-raises an exception from a worker process: the same type,
#: with a message that starts so and carries the worker's whole traceback.
_WORKER_PREFIX = "Caught "
_WORKER_TRACEBACK = "Original Traceback"


def user_message(message: str) -> str:
    """The line a user sees for an error ``message``: the message itself, or, for one that
    a DataLoader worker raised and PyTorch re-raised in the main process ("Caught TCULError
    in DataLoader worker process 0. Original Traceback ..."), the worker's own message (the
    last line of that traceback, after the exception's name)."""
    if message.startswith(_WORKER_PREFIX) and _WORKER_TRACEBACK in message:
        last = message.rstrip().splitlines()[-1]
        _name, sep, text = last.partition(": ")
        if sep and text.strip():
            return text.strip()
    return message
