"""Errors a user can act on. The CLI prints their message, never a traceback."""


class SeqlabError(Exception):
    """Something the user can fix; the message says what is wrong and how to fix it."""


class DataError(SeqlabError):
    """A data source is missing, corrupt or unusable."""


class RunError(SeqlabError):
    """A run directory is incomplete, corrupt or from an incompatible version."""


class ConfigError(SeqlabError):
    """An option has a value seqlab cannot use (unknown name, incompatible setting)."""
