"""Errors a user can cause and fix. The CLI prints them as one line, no traceback."""


class ScenegrepError(Exception):
    """A problem with the user's input or setup; the message says what to do."""


class VideoError(ScenegrepError):
    """A video could not be opened or decoded at all."""


class ModelMismatchError(ScenegrepError):
    """The index was built with another model (or another sampling interval)."""


class IndexNotFoundError(ScenegrepError):
    """There is no index (yet) at the given location."""


class DamagedIndexError(ScenegrepError):
    """The index's files are damaged: results from it cannot be trusted."""
