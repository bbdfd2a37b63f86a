"""The one error type of the review loop: its message is shown to the user as it is."""

from __future__ import annotations


class ReviewError(RuntimeError):
    """A review step failed for a reason the user can act on (the message says how)."""
