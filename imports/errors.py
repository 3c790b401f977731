"""The imports' typed error: a file that is not what it says, said in words a person can act on."""

from __future__ import annotations


class ImportRefused(ValueError):
    """A file that cannot be imported (wrong kind, bad rows, too big): the caller's 4xx."""


class ImportNotFound(LookupError):
    """No import of that id for the site."""
