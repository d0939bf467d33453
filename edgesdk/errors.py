"""One exception tree. The CLI prints ``str(error)`` on one line and exits with ``exit_code``."""

from __future__ import annotations


class EdgeSdkError(Exception):
    """Base of every error edgesdk raises on purpose."""

    exit_code = 2


class ModelError(EdgeSdkError):
    """A model file is missing, empty, corrupt, of an unsupported format, or cannot be handled."""


class ProfileError(EdgeSdkError):
    """A hardware profile is unknown or invalid."""


class RecipeError(EdgeSdkError):
    """A compression recipe is malformed or cannot run on the chosen profile."""


class DataError(EdgeSdkError):
    """A data file (.npz) is missing, malformed or does not fit the model."""


class DeployError(EdgeSdkError):
    """The model or the agent could not be put on, or run on, the device."""


class MeasurementError(EdgeSdkError):
    """The device agent failed or returned a document that does not follow the protocol."""


class OutputError(EdgeSdkError):
    """An output path cannot be used: it is one of the inputs, a directory, of the wrong kind, or not writable."""


class StoreError(EdgeSdkError):
    """The results store cannot be opened or written."""


class SuiteError(EdgeSdkError):
    """A suite file is invalid, or a suite run cannot start or be found."""


class GateError(EdgeSdkError):
    """A regression gate failed: a cell got slower, bigger or less accurate than its baseline allows."""

    exit_code = 1


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's message, at most ``limit`` characters; its type's name
    when the message is empty (taking line 0 of ``str(exc).splitlines()`` raises IndexError then)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:limit]
