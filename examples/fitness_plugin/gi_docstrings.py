"""``docstring``: a genetic-instruct fitness function that scores how well a candidate's
solution documents its entry-point function.

It reads the solution with :mod:`ast` and never runs it. Three things count:

* a docstring on the entry-point function with at least ``min_words`` words (half of
  the value; a shorter docstring earns its share in proportion),
* each parameter named in that docstring (a quarter, by the fraction named; a function
  without parameters earns it when it has a docstring),
* type hints on the parameters and the return (a quarter, by the fraction annotated).

With ``require_docstring: true`` (or the spec's ``gate: true``) it is a gate: a candidate
without a docstring of ``min_words`` words is rejected with ``"docstring: <reason>"``.
"""

from __future__ import annotations

import ast
import re

from genetic_instruct.fitness.base import PerItemFitness
from genetic_instruct.individual import FitnessRecord, Individual

__all__ = ["DocstringFitness", "inspect_function"]

DOCSTRING_SHARE = 0.5
PARAMS_SHARE = 0.25
HINTS_SHARE = 0.25


class DocstringFitness(PerItemFitness):
    """Documentation quality of the entry-point function, in [0, 1]."""

    name = "docstring"
    gate = False

    def __init__(self, require_docstring: bool = False, min_words: int = 1):
        if not isinstance(require_docstring, bool):
            raise TypeError(f"require_docstring must be true or false "
                            f"(got {require_docstring!r})")
        if isinstance(min_words, bool) or not isinstance(min_words, int):
            raise TypeError(f"min_words must be a whole number (got {min_words!r})")
        if min_words < 1:
            raise ValueError(f"min_words must be a whole number of at least 1 "
                             f"(got {min_words!r})")
        self.require_docstring = require_docstring
        self.min_words = min_words
        # an instance attribute: genetic-instruct may still set it from the spec's `gate:`
        self.gate = require_docstring

    def score_one(self, ind: Individual) -> FitnessRecord:
        found = inspect_function(ind.solution, ind.entry_point)
        if "reason" in found:  # nothing to score: no parse, no such function
            return self._record(0.0, False, found)
        words = found["docstring_words"]
        doc_part = min(1.0, words / self.min_words) if found["docstring"] else 0.0
        params = found["params"]
        if not found["docstring"]:
            params_part = 0.0
        elif params:
            params_part = len(found["params_documented"]) / len(params)
        else:
            params_part = 1.0
        hints_part = found["annotated"] / found["annotatable"]
        value = (DOCSTRING_SHARE * doc_part + PARAMS_SHARE * params_part
                 + HINTS_SHARE * hints_part)
        ok = found["docstring"] and words >= self.min_words
        if not found["docstring"]:
            found["reason"] = f"no docstring on {found['function']}()"
        elif not ok:
            found["reason"] = (f"the docstring of {found['function']}() has {words} words, "
                               f"need at least {self.min_words}")
        return self._record(value, ok, found)

    def _record(self, value: float, ok: bool, detail: dict) -> FitnessRecord:
        if ok:
            detail.pop("reason", None)
        return FitnessRecord(self.name, round(value, 4),
                             passed=ok if self.gate else None, detail=detail)


def inspect_function(solution: str, entry_point: str) -> dict:
    """What the solution's entry-point function documents, as a JSON-ready dict.

    Where the entry point is empty, the first top-level function stands in for it. A
    ``reason`` key means there was nothing to inspect.
    """
    try:
        tree = ast.parse(solution or "")
    except (SyntaxError, ValueError) as exc:
        return {"reason": f"the solution does not parse ({type(exc).__name__})"}
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    fn = next((n for n in defs if n.name == entry_point), None)
    if fn is None and not entry_point and defs:
        fn = defs[0]
    if fn is None:
        target = f"{entry_point}()" if entry_point else "a function"
        return {"reason": f"the solution does not define {target} at top level"}

    args = fn.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    every += [a for a in (args.vararg, args.kwarg) if a is not None]
    params = [a.arg for a in every]
    doc = ast.get_docstring(fn) or ""
    documented = [p for p in params if re.search(rf"(?<!\w){re.escape(p)}(?!\w)", doc)]
    hinted = [a.arg for a in every if a.annotation is not None]
    return {
        "function": fn.name,
        "docstring": bool(doc.strip()),
        "docstring_words": len(doc.split()),
        "params": params,
        "params_documented": documented,
        "params_missing": [p for p in params if p not in documented],
        "params_hinted": hinted,
        "return_hinted": fn.returns is not None,
        "annotated": len(hinted) + (fn.returns is not None),
        "annotatable": len(params) + 1,
    }
