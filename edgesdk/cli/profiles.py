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
def profiles_show(name: Annotated[str, typer.Argument(metavar="NAME", help="profile name or YAML path")],
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

    out.print(_annotated(yaml.safe_dump(doc, sort_keys=False, width=100)), highlight=False)


def _annotated(text: str) -> str:
    """The profile's YAML with each byte count, rate and clock also written for a person, as a comment
    (``ram_bytes: 2147483648  # 2 GiB``): the text stays a profile that loads as it is."""
    from ..search.cells import rate, size

    lines, section, depth = [], "", 0
    for line in text.splitlines():
        key, _, value = line.strip().partition(": ")
        indent = len(line) - len(line.lstrip())
        if indent <= depth:
            section = ""
        if not value and key.endswith(":"):
            section, depth = key[:-1], indent
        try:
            number = float(value)
        except ValueError:
            lines.append(line)
            continue
        if key in ("memory_bandwidth_bytes_per_s",):
            note = rate(number, "B/s")
        elif key.endswith("_bytes"):
            note = size(number)
        elif section == "peak_macs_per_s" or key.endswith("_macs_per_s"):
            note = rate(number, "MAC/s")
        elif key.endswith("_hz"):
            note = rate(number, "Hz")
        else:
            note = ""
        lines.append(f"{line}  # {note}" if note else line)
    return "\n".join(lines)
