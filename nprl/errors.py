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
