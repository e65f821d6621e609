"""impasto's version, in a module of its own: any module may import it (the output files record
it) without importing the package's front door, and packaging reads it without running impasto."""

__version__ = "0.1.0"
