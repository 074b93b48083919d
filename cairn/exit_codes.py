"""The one table of exit codes every `cairn` command uses."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    SOME_FAILED = 1  # some inputs failed (each named), the rest was done
    USAGE = 2  # a bad option, setting, file or key; also an index the settings cannot use
    INDEX_UNAVAILABLE = 3  # locked by another process, missing or unreachable
