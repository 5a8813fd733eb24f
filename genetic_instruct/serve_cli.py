"""``genetic-instruct serve``: one configured backend behind an OpenAI-compatible API.

Several runs (or colonies on several machines) can then share one loaded model: point
their configs at it with ``type: openai`` and ``options.base_url: http://HOST:PORT/v1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

err = Console(stderr=True, soft_wrap=True, highlight=False)


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def serve(
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="YAML run config (default: the embedded model)."),
    backend: Optional[str] = typer.Option(
        None, "--backend", "-b", help="Which entry of backends: to serve (default: the "
        "instructor's)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", "-p", help="Port (0: any free one, printed)."),
    set_: List[str] = typer.Option([], "--set", help="Override: section.key=value"),
    max_batch: Optional[int] = typer.Option(
        None, "--max-batch", help="Most requests per backend call (default: its batch_size)."),
    model_name: Optional[str] = typer.Option(
        None, "--model-name", help="Model id to publish (default: the backend's)."),
) -> None:
    """Serve a configured backend over an OpenAI-compatible HTTP API (dynamic batching)."""
    from .config import ConfigError
    from .llm.base import BackendError
    from .llm.embedded import ModelUnavailable
    from .registry import UnknownName

    user_errors = (ConfigError, UnknownName, ModelUnavailable, BackendError,
                   FileNotFoundError, ValueError)
    try:
        server = _start(config, backend, host, port, set_, max_batch, model_name)
    except user_errors as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    print(f"serving {server.app.model_name} on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _start(config: Path | None, name: str | None, host: str, port: int, overrides: list[str],
           max_batch: int | None, model_name: str | None):
    from .config import ConfigError, load_config
    from .registry import backends as registry
    from .serve import ServeApp, Server

    cfg = load_config(config, overrides)
    name = name or cfg.roles["instructor"].backend
    if name not in cfg.backends:
        known = ", ".join(sorted(cfg.backends))
        raise ConfigError(f"--backend {name!r}: no such entry under backends: (known: {known})")
    if max_batch is not None and max_batch < 1:
        raise ConfigError(f"--max-batch must be at least 1 (got {max_batch})")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be in 0..65535 (got {port})")
    bc = cfg.backends[name]
    cls = registry.get(bc.type)
    err.print(f"loading backend {name!r} ({bc.type}, {bc.model}) ...")
    backend = cls(model=bc.model, device=bc.device, dtype=bc.dtype, batch_size=bc.batch_size,
                  **bc.options)
    published = model_name or str(getattr(backend, "model_name", "") or bc.model)
    app = ServeApp(backend, published, max_batch or bc.batch_size, aliases=(bc.model,))
    return Server(app, host, port)
