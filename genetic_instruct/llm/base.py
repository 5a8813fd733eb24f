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
    cached: bool = False  # replayed from the response cache: nothing was paid for it

    @property
    def text(self) -> str:
        return self.texts[0] if self.texts else ""


class BackendError(RuntimeError):
    """A backend failed in a way the user must fix (message is one line, says what to do)."""


@runtime_checkable
class Backend(Protocol):
    """Generates completions. Implementations batch internally.

    ``generate`` may also accept two keyword arguments, which callers pass only when the
    signature has them: ``progress(n)``, called as ``n`` more requests finish, and
    ``on_done(i, completion)``, called as soon as request ``i`` is answered (the response
    cache commits it then, so a crash loses nothing already paid for). ``identity`` (a
    string, optional) names what makes the answers differ: type, model, endpoint.
    """

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
