"""The code blocks of the docs, as tests/test_docs.py runs or checks them.

Fences, by their info string:
  ```bash          run, in the shared docs workspace (set -euo pipefail)
  ```python        run with the project's Python, in the same workspace
  ```bash check    not run here (set-up of this very environment, GPUs, a cluster): every `eai`
                   command in it is parsed by eai's own command line, so a renamed or removed
                   option fails the test; other lines must name a tool that exists
  ```python check  compiled, not run
  ``` / ```text    a synopsis or printed output: not a command
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```(\S*)[ \t]*(.*)$")


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    check_only: bool
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.name}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, in order."""
    found, open_at, lang, check, lines = [], None, "", False, []
    for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        m = FENCE.match(line)
        if m is None:
            if open_at is not None:
                lines.append(line)
            continue
        if open_at is None:
            open_at, lang, check, lines = n, m.group(1), m.group(2).strip() == "check", []
        else:
            found.append(Block(page, open_at, lang, check, "\n".join(lines) + "\n"))
            open_at = None
    if open_at is not None:
        raise ValueError(f"{page}:{open_at}: a code fence is never closed")
    return found


def shell_commands(code: str) -> list[list[str]]:
    """Each command of a bash block as argv: continuation lines joined, comments dropped,
    `a && b` and `a; b` split."""
    joined = re.sub(r"\\\n", " ", code)
    out = []
    for line in joined.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        argv: list[str] = []
        for tok in lexer:
            if tok in (";", "&&", "||", "&", "|"):
                if argv:
                    out.append(argv)
                argv = []
            else:
                argv.append(tok)
        if argv:
            out.append(argv)
    return out


def eai_argv(argv: list[str]) -> list[str] | None:
    """The eai arguments of a command line (`eai ...`, `python -m eai.cli ...`, or under
    `accelerate launch` / `torchrun` with `-m eai.cli`), else None."""
    if argv and argv[0] == "eai":
        return argv[1:]
    if "-m" in argv:
        i = argv.index("-m")
        if i + 1 < len(argv) and argv[i + 1] == "eai.cli":
            return argv[i + 2:]
    return None
