"""Errors that VoxTellCore raises for problems a user can fix.

Each message names the problem and the fix; the command line prints it without a
traceback and exits non-zero.
"""


class VoxTellError(Exception):
    """Base class: a problem with the user's input, model or environment."""


class InputError(VoxTellError):
    """An image, prompt or option that cannot be used."""


class ModelError(VoxTellError):
    """A model folder, checkpoint or text encoder that cannot be loaded."""


class Cancelled(VoxTellError):
    """The caller cancelled a running inference."""
