"""The one exception family. The CLI catches RhetoricError once and prints its message."""


def exception_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's type and message on one line (whitespace folded), cut to limit characters: for a refusal
    that quotes what the library said."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:limit]


class RhetoricError(Exception):
    """Base of every error the user can act on; the message says where, what, and what to do."""


class ConfigError(RhetoricError):
    """A setting in rhetoric.toml, the environment or on the command line is invalid."""


class InputError(RhetoricError):
    """An input file, feed or page cannot be used."""


class LabelError(RhetoricError):
    """The labelled data in labels/ is invalid; the message lists every problem with file and line."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the labels:\n{shown}")


class ModelError(RhetoricError):
    """A model cannot be trained, loaded or verified."""


class StoreError(RhetoricError):
    """The store cannot be opened or written."""
