"""User-facing errors.

Anything a user can cause (a bad parameter, a missing file, no network for a hub model) raises
:class:`LatentgeoError` with a message that names the problem. The command line prints the
message without a traceback and exits with status 2; library callers can catch it.
"""


class LatentgeoError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""


class OfflineError(LatentgeoError):
    """A resource that needs the network (a hub model or data set) was asked for offline."""
