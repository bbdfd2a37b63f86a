"""Errors a reader raises for bad input: always the file, the position, what was expected, the
fix."""

from __future__ import annotations


class ConvertError(ValueError):
    """One input file could not be converted. The batch goes on; the report keeps the reason."""

    def __init__(self, path: str, message: str, position: str | None = None,
                 fix: str | None = None):
        self.path = str(path)
        self.position = position
        self.reason = message
        self.fix = fix
        where = f"{self.path}:{position}" if position else self.path
        text = f"{where}: {message}"
        if fix:
            text += f" (fix: {fix})"
        super().__init__(text)
