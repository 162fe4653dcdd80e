"""One error hierarchy. The CLI turns these into ``Error: ...`` and an exit status."""

from __future__ import annotations


class SubpipeError(Exception):
    """Something the user can fix; ``exit_code`` follows the project's conventions."""

    exit_code = 1


class UsageError(SubpipeError):
    """Bad flags, bad config, unreadable input: exit 2."""

    exit_code = 2


class InputError(UsageError):
    """The media file can't be read or lacks what we need."""


class ConfigError(UsageError):
    """A config file is malformed or names a key we don't know."""


class ModelError(SubpipeError):
    """Weights are missing, or fail their checksum."""

    exit_code = 2


class OutputError(SubpipeError):
    """An output can't be written (permissions, missing folder)."""

    exit_code = 2


class OverwriteRefused(SubpipeError):
    """An output was changed since subpipe wrote it (or subpipe never wrote it): exit 3."""

    exit_code = 3


class OutputBusy(SubpipeError):
    """Another run is writing the same outputs (it holds their lock): exit 3, as a refusal
    to overwrite."""

    exit_code = 3


class PipelineFailed(SubpipeError):
    """A stage failed on a file that looked valid: exit 1."""

    exit_code = 1
