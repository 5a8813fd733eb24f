"""The Backend protocol: a batch of chat requests in, completions out, in the same order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass
class Sampling:
    """Sampling parameters shared by every backend."""

    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 256
    n: int = 1
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


@dataclass
class ChatRequest:
    """One prompt.

    ``prefill`` is text the assistant turn starts with; the completion continues it and
    the returned text includes it, so parsers see the whole answer.
    """

    messages: list[dict[str, str]]
    sampling: Sampling = field(default_factory=Sampling)
    prefill: str = ""
    tag: str = ""


@dataclass
class Completion:
    """The ``n`` answers to one request, with token counts."""

    texts: list[str]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reasons: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.texts[0] if self.texts else ""


@runtime_checkable
class Backend(Protocol):
    """Generates completions. Implementations batch internally."""

    name: str

    def generate(self, requests: list[ChatRequest]) -> list[Completion]: ...


def apply_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """Cut ``text`` at the first stop string; say whether one was found."""
    cut = len(text)
    for s in stop:
        i = text.find(s)
        if s and i != -1:
            cut = min(cut, i)
    return text[:cut], cut < len(text)
