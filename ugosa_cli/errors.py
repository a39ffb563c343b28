"""Errors the library raises for the user to read.

Every error carries a message meant to be shown as one line, and the process exit code the command
line should use: 2 for bad input or usage (the user can fix the call), 1 for failures at run time.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class UgosaError(Exception):
    """Base class: an error with a user-facing one-line message and an exit code."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(UgosaError):
    """The input (a file, a value, a name) is wrong; the user must change the call."""

    exit_code = EXIT_BAD_INPUT


class RunError(UgosaError):
    """Something failed while running (disk, network, device)."""

    exit_code = EXIT_FAILURE


class SettingError(InputError):
    """A setting has a value it cannot take. The library names the setting (``batch_size``); the command line,
    which knows which flag set it, names the flag instead (:meth:`for_flag`)."""

    def __init__(self, setting: str, value: object, problem: str) -> None:
        self.setting = setting
        self.value = value
        self.problem = problem
        super().__init__(f"{setting.replace('_', ' ')}{_shown(value)}: {problem}")

    def for_flag(self, flag: str) -> InputError:
        """The same error, naming ``flag`` (e.g. ``--batch-size``) instead of the setting."""
        return InputError(f"{flag}{_shown(self.value)}: {self.problem}")


def _shown(value: object) -> str:
    """`` value`` as an error shows it after the setting's name; nothing for None (the setting as a whole)."""
    if value is None:
        return ""
    return " " + (repr(value) if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value))
