"""The options that restrict `tune`'s search space, generated from the declared search dimensions.

Every dimension a technique declares (:func:`edgesdk.techniques.base.dimension`) is restricted by
``--space NAME=VALUE``; one declared with ``option=True`` also gets its own ``--NAME`` option. A new
dimension therefore reaches the CLI, its help and its errors without a line here.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, Optional

import typer

from ..techniques import DIMENSIONS, techniques

SPACE_PARAM = "space_option"


def _param(dimension: str) -> str:
    return f"dim_{dimension.replace('-', '_')}"


def dimension_help(dimension: str) -> str:
    """The help of a dimension's option, from the techniques registered in it."""
    dim = DIMENSIONS[dimension]
    values = [label for t in sorted(techniques(dimension=dimension), key=lambda t: t.order) for label in t.labels()]
    none = "'none', " if dim.optional else ""
    return (f"restrict {dim.what} to some of: {none}{', '.join(values)} (repeatable; other values of these steps "
            "work too)")


def space_help() -> str:
    names = ", ".join(DIMENSIONS)
    return f"restrict a search dimension: NAME=VALUE, repeatable ({names}; see the --NAME options for values)"


def parse_space(given: list[str] | None) -> dict[str, list[str]]:
    """``--space NAME=VALUE`` options as dimension -> values (``--space prune=0.5 --space prune=none``).

    Raises:
        typer.BadParameter: a form without ``=`` or an unknown dimension.
    """
    found: dict[str, list[str]] = {}
    for text in given or []:
        name, sep, value = text.partition("=")
        name = name.strip().lower()
        if not sep or not value.strip():
            raise typer.BadParameter(f"expected NAME=VALUE (one of {', '.join(DIMENSIONS)}). Received: {text}",
                                     param_hint="--space")
        if name not in DIMENSIONS:
            raise typer.BadParameter(f"unknown search dimension {name!r}; expected one of "
                                     f"{', '.join(DIMENSIONS)}", param_hint="--space")
        found.setdefault(name, []).extend(v.strip() for v in value.split(",") if v.strip())
    return found


def restricting(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give ``command`` a ``--NAME`` option per dimension declared with ``option=True`` and ``--space``;
    it receives them together as ``restrict`` (dimension -> values, only the dimensions restricted)."""
    signature = inspect.signature(command, eval_str=True)
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()
           if p.name != "restrict"]
    added = [inspect.Parameter(_param(d.name), inspect.Parameter.KEYWORD_ONLY, default=None,
                               annotation=Annotated[Optional[list[str]],  # noqa: UP045 (typer reads it)
                                                    typer.Option(f"--{d.name}", metavar="VALUE",
                                                                 help=dimension_help(d.name))])
             for d in DIMENSIONS.values() if d.option]
    added.append(inspect.Parameter(SPACE_PARAM, inspect.Parameter.KEYWORD_ONLY, default=None,
                                   annotation=Annotated[Optional[list[str]],  # noqa: UP045
                                                        typer.Option("--space", metavar="NAME=VALUE",
                                                                     help=space_help())]))
    # Shown after the command's own options that come before `restrict` in its signature.
    cut = next((i for i, p in enumerate(signature.parameters.values()) if p.name == "restrict"), len(own))
    parameters = [*own[:cut], *added, *own[cut:]]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        restrict: dict[str, list[str]] = {}
        for d in DIMENSIONS.values():
            if d.option and kwargs.get(_param(d.name)):
                restrict.setdefault(d.name, []).extend(kwargs[_param(d.name)])
            kwargs.pop(_param(d.name), None)
        for name, values in parse_space(kwargs.pop(SPACE_PARAM, None)).items():
            restrict.setdefault(name, []).extend(values)
        return command(restrict=restrict, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper
