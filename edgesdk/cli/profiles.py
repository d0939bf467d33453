"""`profiles list` and `profiles show`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from .app import profiles_app
from .common import JsonOpt, human_bytes, out, print_json


@profiles_app.command("list")
def profiles_list(as_json: JsonOpt = False) -> None:
    """List the shipped hardware profiles."""
    from ..profiles import list_profiles, load_profile

    loaded = [load_profile(name) for name in list_profiles()]
    if as_json:
        print_json([p.model_dump(mode="json") for p in loaded])
        return
    table = Table()
    for col in ("name", "class", "precisions", "RAM", "storage", "description"):
        table.add_column(col)
    for p in loaded:
        table.add_row(p.name, p.compute_class, ", ".join(p.precisions), human_bytes(p.memory.ram_bytes),
                      human_bytes(p.memory.storage_bytes), p.description)
    out.print(table)


@profiles_app.command("show")
def profiles_show(name: Annotated[str, typer.Argument(help="profile name or YAML path")],
                  as_json: JsonOpt = False) -> None:
    """Show one hardware profile in full."""
    from ..profiles import load_profile

    p = load_profile(name)
    doc = p.model_dump(mode="json")
    if isinstance(doc.get("operators"), list):
        doc["operators"] = sorted(doc["operators"])
    if as_json:
        print_json(doc)
        return
    import yaml

    out.print(yaml.safe_dump(doc, sort_keys=False, width=100), highlight=False)
