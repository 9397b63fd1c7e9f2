"""The project's error types: each is shown to a CLI user as one line, without a traceback."""


class GooddetectError(Exception):
    """Base class for every error the CLI reports as a one-line message."""


class InputError(GooddetectError):
    """A sequence file that cannot be read: the message names the file and the record or line."""


class ModelFileError(GooddetectError):
    """A model file that is missing, truncated, tampered with, or of an unsupported format."""


class UsageError(GooddetectError):
    """Options that do not fit together, or a missing optional dependency."""
