from __future__ import annotations

import pytest

from genetic_instruct.evolution.parsing import (ParseError, extract_asserts, extract_code,
                                                extract_instruction, extract_solution)


def test_code_from_fenced_block_with_prose():
    text = "Sure! Here it is:\n```python\ndef f(x):\n    return x\n```\nHope this helps."
    assert extract_code(text) == "def f(x):\n    return x\n"


def test_code_without_fence_stops_at_prose():
    text = "def f(x):\n    return x + 1\nThis function adds one."
    assert extract_code(text) == "def f(x):\n    return x + 1\n"


def test_no_code_is_an_error():
    with pytest.raises(ParseError, match="no code"):
        extract_code("I cannot help with that.")


def test_truncated_solution_keeps_parsable_prefix():
    text = "```python\ndef f(x):\n    return x\n\ndef g(y):\n    return (y"
    assert extract_solution(text, "f").startswith("def f(x):")


def test_solution_must_define_entry_point():
    with pytest.raises(ParseError, match="does not define f"):
        extract_solution("```python\ndef g():\n    pass\n```", "f")


def test_asserts_multiline_dedup_and_filter():
    text = ("```python\nassert f(\n    1, 2) == 3\nassert f(2, 2) == 4\nassert g(1) == 1\n"
            "assert f(2, 2) == 4\nassert f(\n```")
    assert extract_asserts(text, "f") == ["assert f(1, 2) == 3", "assert f(2, 2) == 4"]


def test_no_asserts_is_an_error():
    with pytest.raises(ParseError, match="no consistent assert"):
        extract_asserts("def f(): pass", "f")


def test_instruction_strips_labels_and_trailing_prose():
    text = "New task: Write a Python function `area(w: int, h: int) -> int` that multiplies.\n\nNote: x"
    instruction, entry = extract_instruction(text)
    assert instruction == "Write a Python function `area(w: int, h: int) -> int` that multiplies."
    assert entry == "area"


def test_instruction_without_function_name_is_rejected():
    with pytest.raises(ParseError, match="names no function"):
        extract_instruction("Task 4: Write a Python function `get-emo` that finds emoticons.")


def test_bare_function_name_is_enough():
    assert extract_instruction("Write a Python function `area` that multiplies w by h.")[1] == "area"


def test_pooled_asserts_drop_contradictions_and_keep_limit():
    samples = ["assert f(1) == 2\nassert f(2) == 4", "assert f(1) == 3\nassert f(3) == 6",
               "assert f(4) == 8\nassert f(5) == 10"]
    assert extract_asserts(samples, "f", limit=3) == ["assert f(2) == 4", "assert f(3) == 6",
                                                      "assert f(4) == 8"]
