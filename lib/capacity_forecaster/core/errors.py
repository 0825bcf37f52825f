"""Errors a user can act on: each names the file, column, key or stage it is about."""


class CapacityForecasterError(Exception):
    """Base class: the runner prints these as one line, without a traceback."""


class ParamsError(CapacityForecasterError):
    """A params file is missing, unreadable or invalid (the message names the key)."""


class StorageError(CapacityForecasterError):
    """Reading or writing an artifact failed (the message names the key or URI)."""


class DataValidationError(CapacityForecasterError):
    """Input data breaks its contract (the message names the file, column and count)."""


class StageCheckError(CapacityForecasterError):
    """A stage's own products failed its post-conditions (the message says what and where)."""


class StageFailedError(CapacityForecasterError):
    """A notebook failed while the runner executed it (the message names notebook and cell)."""
