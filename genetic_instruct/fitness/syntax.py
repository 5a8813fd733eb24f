"""``syntax``: tree-sitter parse of solution and tests, plus static checks on the tests.

The tests must be assert statements that call the entry point and do not redefine it (a
test writer that defines its own function makes "the tests pass" meaningless), with at
least ``min_asserts`` distinct, non-tautological asserts.
"""

from __future__ import annotations

import ast
from functools import lru_cache

from ..individual import FitnessRecord, Individual
from .base import PerItemFitness

DEFINING = {"function_definition", "class_definition", "lambda", "named_expression",
            "assignment", "augmented_assignment", "import_statement", "import_from_statement",
            "global_statement", "nonlocal_statement"}


@lru_cache(maxsize=1)
def parser():
    import tree_sitter_python
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_python.language()))


def parse(code: str):
    return parser().parse(code.encode()).root_node


def walk(node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(n.children)


def top_level_functions(root) -> set[str]:
    names = set()
    for child in root.children:
        node = child
        if node.type == "decorated_definition":
            node = node.child_by_field_name("definition")
        if node is not None and node.type == "function_definition":
            names.add(node.child_by_field_name("name").text.decode())
    return names


def check_test(test: str, entry_point: str) -> str | None:
    """The problem with one test line, or None."""
    root = parse(test)
    if root.has_error:
        return "a test does not parse"
    stmts = [c for c in root.children if c.type != "comment"]
    if len(stmts) != 1 or stmts[0].type != "assert_statement":
        return "a test is not a single assert statement"
    calls = False
    for n in walk(stmts[0]):
        if n.type in DEFINING:
            return f"a test defines or assigns something ({n.type})"
        if n.type == "call":
            fn = n.child_by_field_name("function")
            calls = calls or (fn.type == "identifier" and fn.text.decode() == entry_point)
    if not calls:
        return f"a test does not call {entry_point}()"
    cond = stmts[0].named_children[0]
    if cond.type == "comparison_operator" and len(cond.named_children) == 2:
        left, right = cond.named_children
        if left.text == right.text:
            return "a test compares an expression with itself"
    if cond.type in ("true", "false", "integer", "string"):
        return "a test asserts a constant"
    return None


class SyntaxFitness(PerItemFitness):
    """Gate: 1.0 when solution and tests parse and the tests are well-formed."""

    name = "syntax"
    gate = True

    def __init__(self, min_asserts: int = 3, **_: object):
        self.min_asserts = min_asserts

    def score_one(self, ind: Individual) -> FitnessRecord:
        reason = self.problem(ind)
        return FitnessRecord(
            self.name,
            0.0 if reason else 1.0,
            passed=reason is None,
            detail={"reason": reason, "asserts": len(ind.tests)} if reason else
            {"asserts": len(ind.tests)},
        )

    def problem(self, ind: Individual) -> str | None:
        if not ind.entry_point:
            return "no entry point"
        root = parse(ind.solution)
        if root.has_error:
            return "the solution does not parse"
        if ind.entry_point not in top_level_functions(root):
            return f"the solution does not define {ind.entry_point}() at top level"
        for test in ind.tests:
            reason = check_test(test, ind.entry_point)
            if reason:
                return reason
        distinct = {ast.dump(ast.parse(t)) for t in ind.tests}
        if len(distinct) < self.min_asserts:
            return f"{len(distinct)} distinct asserts, need at least {self.min_asserts}"
        return None
