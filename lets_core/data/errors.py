"""Errors of the data layer. Both are ValueErrors like the rest of lets_core's user-input errors."""


class DatasetError(ValueError):
    """A dataset file is corrupted, truncated, or holds something other than what was expected."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset is not where it was looked for; the message says how to get it."""
