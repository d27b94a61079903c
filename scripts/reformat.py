"""Reformat the Python a rename changed, so long names still pass the project's linters.

Why here and not in the files: a new name can be 50 characters longer than the template's,
and several names can share a line, so no amount of slack in the template's lines is enough.
The rename therefore runs the project's own formatter on the files it changed (``ruff format``
and ``ruff check --fix``, which also re-sorts imports whose package name changed) and then
fits the lines ruff leaves too long: comments, docstrings and string literals, which ruff
never splits. Markdown files go through ``ruff format`` too (it formats their Python code
blocks, and the project's lint test checks them). Everything happens on copies in a
temporary folder, before the rename touches the tree, so the plan (and --dry-run) already
holds the final text.
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tokenize
from pathlib import Path

# Comments that tools read: moving or splitting them would change what they mean.
PRAGMA = re.compile(r"#\s*(noqa|type:|pragma|fmt:|ruff:|nosec)", re.IGNORECASE)


def ruff_command() -> list[str] | None:
    """How to run ruff here: the module of this interpreter, else ``ruff`` on PATH, else None."""
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    exe = shutil.which("ruff")
    return [exe] if exe else None


def line_length(pyproject: str) -> int:
    """[tool.ruff] line-length of a pyproject.toml text (ruff's default 88 if unset)."""
    import tomllib

    return int(tomllib.loads(pyproject).get("tool", {}).get("ruff", {}).get("line-length", 88))


def reformat(files: dict[str, bytes], pyproject: str, ruff: list[str]) -> dict[str, bytes]:
    """Formatted and fitted copies of ``files`` (path -> content), under pyproject's config.

    Raises RuntimeError when ruff cannot run or cannot parse a file (the rename then
    refuses before changing anything).
    """
    limit = line_length(pyproject)
    # Scratch copies in memory where there is a tmpfs: writing and unlinking thousands of
    # files on a busy disk took 2 ms each. TemporaryDirectory makes a private (0700) folder.
    shm = Path("/dev/shm")  # noqa: S108
    scratch = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="rename-reformat-", dir=scratch) as tmp:
        root = Path(tmp)
        # The project's config, so ruff uses its rules, and the package folder is present,
        # so isort knows the package is first-party.
        (root / "pyproject.toml").write_text(pyproject, encoding="utf-8")
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        paths = sorted(files)
        python = [p for p in paths if p.endswith((".py", ".pyi"))]

        def run(*args: str, only: list[str] | None = None, check: bool = True) -> None:
            targets = paths if only is None else only
            if not targets:
                return
            proc = subprocess.run(
                [*ruff, *args, *targets],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if check and proc.returncode != 0:
                raise RuntimeError(f"ruff {args[0]} failed: {(proc.stderr or proc.stdout).strip()}")

        run("format", "--quiet")  # also the Python code blocks of Markdown files
        # Fixes what it can (import order); lint findings that remain are the project's own.
        run("check", "--fix", "--exit-zero", "--quiet", only=python)
        for _ in range(6):  # each pass splits one more piece off the lines still too long
            changed = False
            for rel in python:
                path = root / rel
                text = path.read_text(encoding="utf-8")
                fitted = fit_lines(text, limit)
                if fitted != text:
                    path.write_text(fitted, encoding="utf-8")
                    changed = True
            if not changed:
                break
            run("format", "--quiet", only=python)
        return {rel: (root / rel).read_bytes() for rel in paths}


def fit_lines(source: str, limit: int) -> str:
    """Split the comments and strings that make a line longer than ``limit``.

    One split per too-long line per call; code itself is left to ``ruff format``.
    """
    lines = source.splitlines(keepends=True)
    long_rows = {i + 1 for i, line in enumerate(lines) if len(line.rstrip("\r\n")) > limit}
    if not long_rows:
        return source  # the common case: nothing to tokenize
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return source
    edits: dict[int, list[str]] = {}  # first row -> replacement lines (for rows first..last)
    spans: dict[int, int] = {}  # first row -> last row replaced
    depth = 0
    for tok in tokens:
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        if tok.type not in (tokenize.COMMENT, tokenize.STRING):
            continue
        if tok.start[0] == tok.end[0]:
            # One-row token: the one that crosses the limit is the one to split.
            hit = [tok.start[0]] if tok.end[1] > limit else []
        else:
            hit = list(range(tok.start[0], tok.end[0] + 1))
        hit = [r for r in hit if r in long_rows and not _edited(spans, r)]
        if not hit:
            continue
        for row in hit if _is_triple(tok.string) else hit[:1]:
            line = lines[row - 1]
            if tok.type == tokenize.COMMENT:
                new = _split_comment(line, tok, limit)
            elif _is_triple(tok.string):
                new = _split_triple(line, row, tok, limit)
            elif tok.start[1] < limit:
                new = _split_string(line, tok, limit, parenthesize=depth == 0)
            else:
                new = None
            if new is not None:
                edits[row], spans[row] = new, row
                long_rows.discard(row)
    for row in sorted(edits, reverse=True):
        lines[row - 1 : spans[row]] = edits[row]
    return "".join(lines)


def _edited(spans: dict[int, int], row: int) -> bool:
    return any(first <= row <= last for first, last in spans.items())


def _is_triple(string: str) -> bool:
    body = string.lstrip("rRbBuUfF")
    return body.startswith(('"""', "'''"))


def _split_at(text: str, lo: int, hi: int) -> int | None:
    """Index of the last space in text[lo:hi] (split there), or None."""
    k = text.rfind(" ", lo, hi)
    return k if k > lo else None


def _split_comment(line: str, tok: tokenize.TokenInfo, limit: int) -> list[str] | None:
    if PRAGMA.search(tok.string):
        return None
    col = tok.start[1]
    code = line[:col]
    if code.strip():
        # A comment after code: move it onto its own line above, indented like the code.
        indent = re.match(r"\s*", line).group(0)
        return [f"{indent}{tok.string}\n", code.rstrip() + "\n"]
    k = _split_at(line, col + 2, limit + 1)
    if k is None:
        return None
    return [line[:k].rstrip() + "\n", f"{code}# {line[k + 1 :].lstrip()}"]


def _split_triple(line: str, row: int, tok: tokenize.TokenInfo, limit: int) -> list[str] | None:
    """Break a docstring-like line at a space; the rest keeps the line's indentation."""
    if "f" in tok.string[:3].lower() and "{" in line:
        return None  # never split inside an f-string's replacement field
    first = row == tok.start[0]
    indent = " " * tok.start[1] if first else re.match(r"\s*", line).group(0)
    lo = (tok.start[1] + 3 if first else len(indent)) + 1
    k = _split_at(line, lo, limit + 1)
    if k is None:
        return None
    return [line[:k].rstrip() + "\n", indent + line[k + 1 :].lstrip()]


def _split_string(
    line: str, tok: tokenize.TokenInfo, limit: int, parenthesize: bool
) -> list[str] | None:
    """Split a one-line literal into two adjacent literals (same value), for ruff to lay out."""
    text = tok.string
    prefix = re.match(r"[rRbBuUfF]*", text).group(0)
    quote = text[len(prefix)]
    body = text[len(prefix) + 1 : -1]
    room = limit - tok.start[1] - len(prefix) - 1
    cut = _string_cut(body, max(room, 8), "f" in prefix.lower())
    if cut is None:
        return None
    parts = f"{prefix}{quote}{body[:cut]}{quote} {prefix}{quote}{body[cut:]}{quote}"
    if parenthesize:
        parts = f"({parts})"
    start, end = tok.start[1], tok.end[1]
    return [line[:start] + parts + line[end:]]


def _string_cut(body: str, room: int, fstring: bool) -> int | None:
    """Where to cut a literal's body: after a space or separator, not in an escape or field."""
    best: dict[bool, int] = {}  # after a space (preferred) / after another separator
    depth = 0
    for i, ch in enumerate(body[: min(room, len(body) - 1)]):
        if fstring and ch == "{":
            depth += 1
        elif fstring and ch == "}":
            depth -= 1
        if depth or i < 4 or body[i - 1] == "\\" or ch == "\\":
            continue
        if ch in " /.:-_=,":
            best[ch == " "] = i + 1
    return best.get(True, best.get(False))
