"""redes: information system for neighbourhood solidarity networks (REVES/REDES)."""

__version__ = "0.1.0"
