"""capacity_forecaster: server fleet capacity planning, one module per pipeline concern."""

__version__ = "0.1.0"
