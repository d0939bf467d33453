"""`devices add/list/remove/check/clean`: named devices."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from device_agent.runtime import installable

from ..deploy import examples
from .app import devices_app
from .common import JsonOpt, StoreOpt, err, out, print_json, tag


@devices_app.command("add")
def devices_add(name: Annotated[str, typer.Argument(metavar="NAME", help="a name, e.g. pi5-lab")],
                url: Annotated[str, typer.Argument(metavar="URL", help=f"one of: {examples(wrappable=True)}")],
                replace: Annotated[bool, typer.Option("--replace", help="overwrite a device of that name")] = False,
                store: StoreOpt = None) -> None:
    """Name a device URL; the name then works wherever --device takes a URL.

    Examples:

    \b
      edgesdk devices add pi5 "ssh://pi@raspberrypi.local?python=/home/pi/venv/bin/python"
      edgesdk devices add pixel8 "adb://38121FDJH000AB?benchmark_model=/opt/tflite/android_aarch64_benchmark_model"
    """
    from .. import devices
    from ..store import Store

    devices.add(Store(store), name, url, replace=replace)
    out.print("added device", tag(name, "bold"), f"→ {url}", highlight=False)


@devices_app.command("list")
def devices_list(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """List the named devices."""
    from ..store import Store

    known = Store(store).devices()
    if as_json:
        print_json(known)
        return
    if not known:
        out.print("no named devices yet; add one with `edgesdk devices add NAME URL`")
        return
    table = Table()
    table.add_column("name")
    table.add_column("url")
    for name, url in known.items():
        table.add_row(name, url)
    out.print(table)


@devices_app.command("remove")
def devices_remove(name: Annotated[str, typer.Argument(metavar="NAME",
                                                       help="a named device")], store: StoreOpt = None) -> None:
    """Forget a named device (what was uploaded to it stays; see `devices clean`)."""
    from ..errors import DeployError
    from ..store import Store

    if not Store(store).remove_device(name):
        raise DeployError(f"no device named {name!r}")
    out.print(f"removed device {name}")


@devices_app.command("check")
def devices_check(device: Annotated[str, typer.Argument(metavar="DEVICE", help="a named device or a URL")],
                  trust_new_host: Annotated[bool, typer.Option("--trust-new-host", help="accept and record an "
                                                               "unknown SSH host key")] = False,
                  store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Is the device reachable? Which python, TFLite runtime and version, power source, GPU and NPU?

    The GPU and NPU are found by running a 1 KB model on each once (LiteRT's CompiledModel): the GPU's
    adapter (software ones are flagged), or why there is none.

    Exits 1 when the device cannot measure (unreachable, or no TFLite runtime), saying why.
    """
    from .. import devices
    from ..store import Store

    result = devices.check(device, Store(store), trust_new_host=trust_new_host)
    if as_json:
        print_json(result.to_dict())
    else:
        table = Table(show_header=False, box=None)
        table.add_row("device", f"{result.device} ({result.url})")
        table.add_row("reachable", "yes" if result.reachable else Text.assemble(("no", "red"), f": {result.error}"))
        if result.reachable:
            table.add_row("python", result.python or Text.assemble(("?", "red"), f" {result.error or ''}"))
            runtime = result.runtime
            table.add_row("runtime", f"{runtime['name']} {runtime['version']}" if runtime
                          else Text.assemble(("none", "red"), f": {result.runtime_error}"))
            table.add_row("power", result.power or "")
            described = result.description or {}
            for name, what in (result.accelerators or {}).items():
                table.add_row(name, what if not what.startswith("none") else tag(what, "dim"))
            if described.get("emulated"):  # qemu-user and the like: measurements there are not its speed
                table.add_row("emulated", Text.assemble((str(described["emulated"]), "yellow"),
                                                        ": timings are emulation"))
            table.add_row("fingerprint", result.fingerprint or "")
        out.print(table)
    if not result.ok:
        raise typer.Exit(1)


@devices_app.command("clean")
def devices_clean(device: Annotated[str, typer.Argument(metavar="DEVICE",
                                                        help="a named device, an ssh:// or adb:// URL")],
                  store: StoreOpt = None) -> None:
    """Remove the agent and models edgesdk uploaded to a device: only the files it recorded there, never
    other files in the same folder (?cache= / ?dir=); the environment `devices setup` made stays."""
    from .. import devices
    from ..store import Store

    done = devices.clean(device, Store(store))
    out.print(f"removed {done.removed} file(s) edgesdk had uploaded to {device} ({done.directory})")
    if done.kept:
        out.print(f"left {done.kept} other file(s) in {done.directory}: edgesdk did not upload them")


INSTALLABLE = list(installable())  # what `devices setup` can install, preferred first


@devices_app.command("setup")
def devices_setup(device: Annotated[str, typer.Argument(metavar="DEVICE",
                                                        help="a named device or an ssh:// or adb:// URL")],
                  runtime: Annotated[Optional[str], typer.Option(
                      "--runtime", metavar="|".join(INSTALLABLE),
                      help=f"the TFLite runtime to install (default: the first of {', '.join(INSTALLABLE)} that "
                           "has a wheel for the device)")] = None,
                  offline: Annotated[bool, typer.Option(
                      "--offline", help="the device has no internet: download the wheels here for its platform "
                                        "tags and push them")] = False,
                  trust_new_host: Annotated[bool, typer.Option("--trust-new-host", help="accept and record an "
                                                               "unknown SSH host key")] = False,
                  store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Make a device ready to measure: python, numpy and a TFLite runtime in a virtual environment.

    Finds the device's python, platform and architecture, creates a virtual environment in the device
    cache and installs numpy and a runtime with a wheel for that platform into it; then checks that the
    agent runs with it. A named device's record then points at that interpreter (?python=…), so every
    later command uses it; for a URL the new URL is printed. Running it again changes nothing on a device
    that is ready; a failure leaves the device and its record as they were.

    Examples:

    \b
      edgesdk devices setup pi5
      edgesdk devices setup "ssh://pi@raspberrypi.local" --offline --runtime tflite-runtime
    """
    from .. import provision
    from ..store import Store

    with err.status(f"setting up {device}…") as status:
        def show(event: Any) -> None:  # each step on its own line (a log keeps them), the current one live
            status.update(f"[{(event.done or 0) + 1}/{(event.total or 5) + 1}] {event.text}…")
            err.print(f"  {event.text}", highlight=False)

        result = provision.setup(device, Store(store), runtime=runtime, offline=offline,
                                 trust_new_host=trust_new_host, progress=show)
    if as_json:
        print_json(result.to_dict())
        return
    runtime_text = f"{result.runtime['name']} {result.runtime['version']}"
    where = f"{result.platform['system']} {result.platform['machine']}, python {result.platform['version']}"
    verb = "set up" if result.changed else "already set up"
    out.print(f"{device} {verb}: {runtime_text} with {result.python} ({where})", highlight=False)
    if "://" in device:
        out.print(f"use it as --device \"{result.url}\", or name it: edgesdk devices add NAME \"{result.url}\"",
                  highlight=False)
