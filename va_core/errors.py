"""Errors a user can act on. The CLI prints their message and exits with status 2."""

__all__ = ["EncoderUnavailable", "InputError", "NotFound", "VAError"]


class VAError(Exception):
    """Bad input or an impossible request; the message names what is wrong."""


class InputError(VAError, ValueError):
    """The caller gave something malformed (a label name, a clip key, a file)."""


class NotFound(VAError, LookupError):
    """A label, clip, model version or table that does not exist."""


class EncoderUnavailable(VAError, RuntimeError):
    """The encoder's weights cannot be had here; the message names the alternatives."""
