"""`--config FILE.yaml`: a command's options kept in a file (a team's repository), the command line overriding.

The file is a YAML mapping of option names (``max-accuracy-drop: 0.01``, or ``max_accuracy_drop``; the
model as ``model``), read before the other options and checked against the command's own options and
their types: an unknown key or a wrong value is an error naming the file and the key. What it gives
becomes the options' defaults (Click's ``default_map``), so anything on the command line wins; a list
option (``device``, ``precision``) takes a list or one value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import yaml

from ..errors import first_line
from ..fileio import read_text


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(read_text(path))
    except OSError as exc:
        raise typer.BadParameter(f"{path}: cannot read it: {exc.strerror or exc}", param_hint="--config") from exc
    except UnicodeDecodeError as exc:
        raise typer.BadParameter(f"{path}: must be UTF-8 text; byte {exc.start} is not",
                                 param_hint="--config") from exc
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"{path}: not valid YAML: {first_line(exc)}", param_hint="--config") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise typer.BadParameter(f"{path}: must be a mapping of option names to values (max-accuracy-drop: "
                                 f"0.01). Received: {type(raw).__name__}", param_hint="--config")
    return raw


def _load(ctx: typer.Context, param: Any, value: Path | None) -> Path | None:
    if value is None:
        return None
    params = {p.name: p for p in ctx.command.params if p.name and p.name != param.name}
    by_flag = {opt.lstrip("-"): p.name for p in params.values() for opt in p.opts if p.name}
    given: dict[str, Any] = {}
    for key, item in _read(value).items():
        name = by_flag.get(key) or by_flag.get(key.replace("_", "-")) or (key if key in params else None)
        if name is None:
            known = ", ".join(sorted(o for o in by_flag if len(o) > 1))
            raise typer.BadParameter(f"{value}: unknown key {key!r}; expected one of: {known}",
                                     param_hint="--config")
        target = params[name]
        multiple = getattr(target, "multiple", False) or (target.nargs == -1)
        if multiple and not isinstance(item, list):
            item = [item]
        if isinstance(item, (dict, list)) and not multiple:
            raise typer.BadParameter(f"{value}: {key} takes one value. Received: {item!r}", param_hint="--config")
        item = [str(v) for v in item] if multiple else item if isinstance(item, bool) else str(item)
        try:
            target.process_value(ctx, item)
        except typer.BadParameter as exc:
            raise typer.BadParameter(f"{value}: {key}: {exc.message}", param_hint="--config") from exc
        given[name] = item
    ctx.default_map = {**(ctx.default_map or {}), **given}
    return value


ConfigOpt = Annotated[Optional[Path], typer.Option(
    "--config", metavar="FILE.yaml", is_eager=True, callback=_load,
    help="read options from a YAML mapping (max-accuracy-drop: 0.01, device: [pi5-a, pi5-b], model: m.keras); "
    "the command line overrides it")]

__all__ = ["ConfigOpt"]
