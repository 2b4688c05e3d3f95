"""The one exception type for bad user input.

Raised at the boundary (command line, public API) before any work starts.  The
message names the argument and what is allowed; the command line prints it as
one line and exits with status 2.
"""


class UsageError(ValueError):
    """Invalid argument: the message names it and says what is allowed."""
