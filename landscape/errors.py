"""The one exception family the library raises.

Messages say where, what was expected, what was found, and the fix. Only the CLI turns these
into exit codes: `ConfigError` (bad input the user can correct on the command line) maps to 2,
every other `LandscapeError` to 1.
"""

from __future__ import annotations


class LandscapeError(Exception):
    """Base class of every error raised by `landscape`."""


class ConfigError(LandscapeError, ValueError):
    """An unknown key, a bad value or an impossible combination of options."""


class DataError(LandscapeError):
    """A dataset is missing, corrupt (md5 mismatch) or cannot be downloaded."""


class StoreError(LandscapeError):
    """An HDF5 store is missing, corrupt, or does not match the requested experiment."""


class ModelError(LandscapeError):
    """A model factory or a weights file cannot be loaded, or the two do not match."""
