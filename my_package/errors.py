"""Exceptions that the command line catches by name; this module imports nothing heavy.

The CLI prints ``error: <message>`` for each of them and exits with status 2, so a
message must stand alone: it names the file, the line, the variable, the key and the fix.
"""


class VariablesFileError(ValueError):
    """variables.yml (or another variables file) cannot be used as it is written."""
