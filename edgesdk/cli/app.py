"""The `edgesdk` Typer application, its command groups and the global options."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer
from rich.logging import RichHandler
from typer.core import TyperGroup

from .common import err


class _Group(TyperGroup):
    """A command group whose commands name every option's value in --help (``--runs RUNS``) where typer
    would print its type (``--runs <int range>``): an option without an explicit metavar gets its name."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        for param in getattr(command, "params", []):
            if param.param_type_name == "option" and param.metavar is None and not getattr(param, "is_flag", False):
                param.metavar = param.name.upper() if param.name else None
        return command


app = typer.Typer(help="Compress Keras and TFLite models for a hardware target and measure them on the device.",
                  no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, cls=_Group)
profiles_app = typer.Typer(help="List and show hardware profiles.", no_args_is_help=True, cls=_Group)
app.add_typer(profiles_app, name="profiles")
devices_app = typer.Typer(help="Name devices, check them, clean what edgesdk left on them.", no_args_is_help=True,
                          cls=_Group)
app.add_typer(devices_app, name="devices")
export_app = typer.Typer(help="Export a model for a firmware build.", no_args_is_help=True, cls=_Group)
app.add_typer(export_app, name="export")
suite_app = typer.Typer(help="Run suites of models x recipes x devices unattended; gate on regressions.",
                        no_args_is_help=True, cls=_Group)
app.add_typer(suite_app, name="suite")


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log each stage")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=err, show_time=False, show_path=False)])
