"""The `edgesdk` Typer application, its command groups and the global options."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.logging import RichHandler

from .common import err

app = typer.Typer(help="Compress Keras and TFLite models for a hardware target and measure them on the device.",
                  no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None)
profiles_app = typer.Typer(help="List and show hardware profiles.", no_args_is_help=True)
app.add_typer(profiles_app, name="profiles")
devices_app = typer.Typer(help="Name devices, check them, clean what edgesdk left on them.", no_args_is_help=True)
app.add_typer(devices_app, name="devices")
export_app = typer.Typer(help="Export a model for a firmware build.", no_args_is_help=True)
app.add_typer(export_app, name="export")
suite_app = typer.Typer(help="Run suites of models x recipes x devices unattended; gate on regressions.",
                        no_args_is_help=True)
app.add_typer(suite_app, name="suite")


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log each stage")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=err, show_time=False, show_path=False)])
