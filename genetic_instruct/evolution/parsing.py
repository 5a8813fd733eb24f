"""Robust parsing of LLM answers: fenced code, stray prose, missing blocks.

Every function returns a value or raises ``ParseError`` with a short reason; the operators
turn that reason into a rejected Individual.
"""

from __future__ import annotations

import ast
import re
import textwrap

FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
# `name(args) -> ret` or a bare `name` in backticks (the solution then gives the signature)
SIGNATURE = re.compile(r"`\s*(?:def\s+)?([A-Za-z_]\w*)\s*(?:\(([^`]*)\)[^`]*)?`")
PROSE_PREFIX = re.compile(
    r"^\s*(?:#+\s*)?(?:\*\*)?(?:new|rewritten|evolved)?\s*(?:task|instruction|problem)"
    r"(?:\s*\d+)?\s*(?:\*\*)?\s*:\s*",
    re.I,
)


class ParseError(ValueError):
    """An answer we cannot use; ``str(err)`` is the rejection reason."""


def extract_code(text: str) -> str:
    """The Python code in an answer: the longest fenced block, else the code-looking lines."""
    blocks = [(lang.lower(), body) for lang, body in FENCE.findall(text)]
    python = [b for lang, b in blocks if lang in ("python", "py", "python3", "")]
    if python:
        return max(python, key=len).strip("\n") + "\n"
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if re.match(r"(def|class|import|from)\s", ln)),
                 None)
    if start is None:
        raise ParseError("no code block in the answer")
    kept = []
    for ln in lines[start:]:
        if ln and not ln[0].isspace() and not re.match(
            r"(def|class|import|from|@|[A-Za-z_]\w*\s*=|assert|if|for|while|return|#)", ln
        ):
            break  # prose after the code
        kept.append(ln)
    return "\n".join(kept).strip("\n") + "\n"


def longest_parsable_prefix(code: str) -> str:
    """Drop trailing lines until the code parses (answers cut at max_tokens)."""
    lines = code.splitlines()
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end]) + "\n"
        try:
            ast.parse(candidate)
            return candidate
        except SyntaxError:
            continue
    raise ParseError("the code does not parse")


def extract_solution(text: str, entry_point: str) -> str:
    code = extract_code(text)
    try:
        ast.parse(code)
    except SyntaxError:
        code = longest_parsable_prefix(code)
    tree = ast.parse(code)
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if entry_point not in names:
        raise ParseError(f"the solution does not define {entry_point}()")
    return code


def _assert_statements(body: str) -> list[ast.Assert]:
    """Assert statements in ``body``, each possibly spanning several lines."""
    lines = body.splitlines()
    found = []
    i = 0
    while i < len(lines):
        if not lines[i].lstrip().startswith("assert"):
            i += 1
            continue
        for j in range(i, min(i + 12, len(lines))):
            chunk = textwrap.dedent("\n".join(lines[i : j + 1]))
            try:
                tree = ast.parse(chunk)
            except SyntaxError:
                continue
            if len(tree.body) == 1 and isinstance(tree.body[0], ast.Assert):
                found.append(tree.body[0])
            i = j
            break
        i += 1
    return found


def extract_asserts(texts: str | list[str], entry_point: str, limit: int = 8) -> list[str]:
    """Distinct top-level ``assert``s that call the entry point, one line each, in order.

    ``texts`` may hold several samples of the same test prompt; their asserts are pooled,
    and asserts that contradict each other (the same call expected to give two different
    results) are dropped, all of them: at most one can be right, and which one is not
    ours to guess. At most ``limit`` are kept.
    """
    nodes: list[ast.Assert] = []
    for text in [texts] if isinstance(texts, str) else texts:
        body = "\n".join(b for _, b in FENCE.findall(text)) or text
        nodes += [n for n in _assert_statements(body)
                  if any(isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
                         and c.func.id == entry_point for c in ast.walk(n))]
    expected: dict[str, set[str]] = {}
    for node in nodes:
        call = _equality_sides(node)
        if call:
            expected.setdefault(call[0], set()).add(call[1])
    asserts: list[str] = []
    for node in nodes:
        call = _equality_sides(node)
        if call and len(expected[call[0]]) > 1:
            continue
        line = ast.unparse(node)
        if line not in asserts and len(asserts) < limit:
            asserts.append(line)
    if not asserts:
        raise ParseError(f"no consistent assert statement calls {entry_point}()")
    return asserts


def _equality_sides(node: ast.Assert) -> tuple[str, str] | None:
    """(call, expected) for ``assert call == expected``, else None."""
    t = node.test
    if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], (ast.Eq, ast.Is)):
        return ast.dump(t.left), ast.dump(t.comparators[0])
    return None


def extract_instruction(text: str) -> tuple[str, str]:
    """(instruction, entry_point) from an instructor's answer.

    Strips labels like "New task:" and trailing prose after a blank line; the entry point
    is the first function named with its signature in backticks.
    """
    text = text.strip()
    text = PROSE_PREFIX.sub("", text, count=1)
    first_para = re.split(r"\n\s*\n", text, maxsplit=1)[0].strip()
    if len(first_para) < 20:
        raise ParseError("the instruction is empty or too short")
    m = SIGNATURE.search(first_para)
    if not m:
        raise ParseError("the instruction names no function in backticks")
    if len(first_para) > 2000:
        raise ParseError("the instruction is longer than 2000 characters")
    return first_para, m.group(1)


def instruction_signature(instruction: str) -> str:
    """The signature an instruction names in backticks (``name(args) -> ret``), or ""."""
    m = SIGNATURE.search(instruction)
    return m.group(0).strip("` ") if m else ""
