"""User-facing errors: the CLI prints their message on one line and exits with code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class NprlError(Exception):
    """A mistake in what the user asked for (bad config, env id, checkpoint, path)."""


class NprlWarning(UserWarning):
    """Something the user should know that does not stop the run (the CLI prints it on
    one line, like an error)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ' (did you mean X?)' suffix naming the closest valid choice, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def first_line(error: BaseException, limit: int | None = 300) -> str:
    """The first line of ``error``'s message (its type name when the message is empty),
    cut to ``limit`` characters: what a one-line error keeps of a library's exception."""
    line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return line if limit is None else line[:limit]
