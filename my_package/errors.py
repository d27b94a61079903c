"""The mistakes a user can make and fix; this module imports nothing heavy.

The command line prints each ``UserError`` as one ``error: ...`` line and exits with
its ``exit_code``, never with a traceback (``--debug`` or ``MY_PACKAGE_DEBUG=1``
shows it). A message must stand alone: it names the thing (file, line, variable,
setting), the bad value and the fix. Raise a subclass of ``UserError`` from your
own code and the CLI handles it too.
"""


class UserError(Exception):
    """A mistake in the command line, an input, a file or a setting: exit code 2."""

    exit_code = 2


class ServiceError(UserError):
    """A service the run needs (MongoDB, a Prefect server) does not answer: exit code 1."""

    exit_code = 1


class VariablesFileError(UserError, ValueError):
    """variables.yml (or another variables file) cannot be used as it is written."""


class InputValidationError(UserError, ValueError):
    """An input the model must not run on. The message names the variable and the fix.

    Defined here, not in validation.py, so the CLI can refuse a bad scan text before it
    imports numpy and lume; ``my_package.validation.InputValidationError`` is this class.
    """
