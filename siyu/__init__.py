"""Siyu (私域): private-domain growth platform."""

__version__ = "0.1.0"
