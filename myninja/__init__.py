"""Shared ground for every myninja package: configuration, paths and the error hierarchy."""

__version__ = "0.1.0"
