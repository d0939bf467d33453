"""The suite file: models x recipes x devices, with bench settings and health limits, validated on load.

    name: nightly                 # runs of the same name are compared and trended together
    profile: host                 # the profile recipes are compressed for (default: host)
    models:
      - path: models/kws.keras    # relative to this file
        data: data/kws_val.npz    # optional: quality (accuracy with labels, else fidelity)
      - name: detector
        tune: runs/detector       # an earlier `edgesdk tune -o` folder: its best.tflite
        recipes: [none]           # this model's own recipes (none: a .tflite is measured as it is)
    recipes: [none, int8]         # none: the model as given (a Keras model converted to fp32)
    devices:
      - local
      - pi5                       # a named device (`edgesdk devices add`)
      - {name: jetson, url: "ssh://nvidia@jetson.lan?python=/opt/venv/bin/python"}
    bench: {runs: 50, warmup: 5, threads: 2, delegate: default, accelerator: gpu}
    health: {max_temperature_c: 80, min_battery_percent: 20, retries: 3, backoff_s: 2}
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from device_agent import protocol
from device_agent.protocol import BenchSettings

from ..errors import EdgeSdkError, SuiteError, first_line
from ..fileio import read_text
from ..strict import Strict, StrictBool

DEFAULT_BENCH = BenchSettings()
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ModelEntry(Strict):
    """A model of the suite: a file, or the best model of an earlier tune run."""

    name: str | None = None
    path: str | None = None
    tune: str | None = None
    data: str | None = None
    recipes: list[str] | None = Field(None, min_length=1)   # this model's recipes (default: the suite's)
    trust_code: StrictBool = False    # load Keras layers that carry Python code (Lambda layers)

    @field_validator("recipes", mode="before")
    @classmethod
    def _recipes(cls, value: Any) -> Any:
        return ["none" if item is None else item for item in value] if isinstance(value, list) else value

    @property
    def is_tflite(self) -> bool:
        """A .tflite as given (a file, or a tune folder's best.tflite): no training graph."""
        return self.tune is not None or Path(self.path or "").suffix.lower() == ".tflite"

    @model_validator(mode="after")
    def _one_source(self) -> ModelEntry:
        if (self.path is None) == (self.tune is None):
            raise ValueError("give exactly one of 'path' (a model file) or 'tune' (an edgesdk tune output folder)")
        if self.name is not None and not _NAME.match(self.name):
            raise ValueError(f"a model name is letters, digits, '.', '_' and '-'. Received: {self.name!r}")
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        source = Path(self.path or self.tune or "model")
        return source.stem if self.path else source.name


class DeviceEntry(Strict):
    """A device of the suite: a URL or a name from the store's named devices."""

    name: str
    url: str | None = None


class Bench(Strict):
    """How each cell is measured (the agent's settings; the defaults are BenchSettings')."""

    runs: int = Field(DEFAULT_BENCH.runs, ge=1, le=protocol.MAX_RUNS)
    warmup: int = Field(DEFAULT_BENCH.warmup, ge=0, le=protocol.MAX_RUNS)
    min_time_s: float = Field(DEFAULT_BENCH.min_time_s, ge=0, le=protocol.MAX_SECONDS)
    threads: int | None = Field(DEFAULT_BENCH.threads, ge=1, le=1024)
    delegate: str = "default"      # default (the runtime's own: XNNPACK), none, or a delegate library path
    accelerator: Literal["cpu", "gpu", "npu", "auto"] | None = None   # None: the suite profile's (else cpu)
    windows: int = Field(DEFAULT_BENCH.windows, ge=1, le=1000)
    power: StrictBool = DEFAULT_BENCH.power
    timeout_s: float = Field(600.0, gt=0, le=86_400)

    def settings(self) -> BenchSettings:
        """The agent's settings for these (``delegate: default`` is the runtime's own)."""
        return BenchSettings(runs=self.runs, warmup=self.warmup, min_time_s=self.min_time_s, threads=self.threads,
                             windows=self.windows, power=self.power,
                             delegate=None if self.delegate == "default" else self.delegate,
                             accelerator=self.accelerator)


class Health(Strict):
    """When a device is skipped, and how transient transport failures are retried."""

    max_temperature_c: float = Field(80.0, ge=-40, le=150)
    min_battery_percent: float = Field(20.0, ge=0, le=100)
    retries: int = Field(3, ge=0, le=100)
    backoff_s: float = Field(2.0, ge=0, le=3600)   # doubled after each failed attempt


class Suite(Strict):
    name: str
    profile: str = "host"
    models: list[ModelEntry] = Field(min_length=1)
    recipes: list[str] = Field(default_factory=lambda: ["none"], min_length=1)
    devices: list[DeviceEntry] = Field(min_length=1)
    bench: Bench = Field(default_factory=lambda: Bench.model_validate({}))
    health: Health = Field(default_factory=lambda: Health.model_validate({}))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"a suite name is letters, digits, '.', '_' and '-'. Received: {value!r}")
        return value

    @field_validator("devices", mode="before")
    @classmethod
    def _devices(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [_device_entry(item) for item in value]

    @field_validator("recipes", mode="before")
    @classmethod
    def _recipes(cls, value: Any) -> Any:
        if isinstance(value, list):
            return ["none" if item is None else item for item in value]
        return value

    def recipes_of(self, entry: ModelEntry) -> list[str]:
        """The recipes a model is run with: its own, else the suite's."""
        return list(entry.recipes or self.recipes)

    @model_validator(mode="after")
    def _applicable(self) -> Suite:
        """Every recipe must parse, and a .tflite's must not need a training graph (whether an integer
        .tflite takes a precision is known once the file is read, when its cell runs)."""
        from ..techniques import FLATBUFFER_FORMS, REGISTRY, parse_recipe

        for entry in self.models:
            for recipe in self.recipes_of(entry):
                if recipe == "none":
                    continue
                try:
                    parsed = parse_recipe(recipe)
                except EdgeSdkError as exc:
                    raise ValueError(f"model {entry.label!r}: recipe {recipe!r}: {exc}") from None
                needs = [s.name for s in parsed.steps if not REGISTRY[s.name].forms & FLATBUFFER_FORMS]
                if entry.is_tflite and needs:
                    raise ValueError(f"model {entry.label!r} is a .tflite, which has no training graph: recipe "
                                     f"{recipe!r} cannot apply ({', '.join(needs)} takes Keras models); give the "
                                     "Keras/SavedModel source as its path")
        return self

    @model_validator(mode="after")
    def _unique(self) -> Suite:
        for what, labels in (("model", [m.label for m in self.models]), ("device", [d.name for d in self.devices]),
                             ("recipe", list(self.recipes))):
            dupes = sorted({x for x in labels if labels.count(x) > 1})
            if dupes:
                raise ValueError(f"two {what}s are named {dupes[0]!r}; give each a distinct 'name'")
        return self


def _device_entry(item: Any) -> Any:
    """A plain string is a URL (named by its host) or a named device."""
    if not isinstance(item, str):
        return item
    if item in ("local", "local://"):
        return {"name": "local", "url": "local"}
    if "://" in item:
        rest = item.split("://", 1)[1].split("?")[0]
        host = rest.rsplit("@", 1)[-1].strip("/").replace("/", "_").replace(":", "_") or item
        return {"name": host, "url": item}
    return {"name": item}


class LoadedSuite:
    """A validated suite with its file's folder (relative paths resolve there) and content hash."""

    def __init__(self, spec: Suite, path: Path, sha256: str) -> None:
        self.spec = spec
        self.path = path
        self.sha256 = sha256

    def resolve(self, relative: str) -> Path:
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else (self.path.parent / candidate).resolve()

    def model_file(self, entry: ModelEntry) -> Path:
        """The model file an entry names.

        Raises:
            SuiteError: the file, or the tune folder's best.tflite, does not exist.
        """
        if entry.path is not None:
            path = self.resolve(entry.path)
            if not path.exists():
                raise SuiteError(f"{self.path}: model {entry.label!r}: path {entry.path!r} does not exist")
            return path
        folder = self.resolve(entry.tune or "")
        best = folder / "best.tflite"
        if not best.is_file():
            why = "no such folder" if not folder.is_dir() else "it has no best.tflite (did the tune find one?)"
            raise SuiteError(f"{self.path}: model {entry.label!r}: tune {entry.tune!r}: {why}")
        return best

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, **self.spec.model_dump()}


def _format(path: Path, raw: Any, exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = [str(p) for p in first["loc"]]
    where = ".".join(loc) or "(top level)"
    entry = ""
    if len(loc) >= 2 and loc[0] in ("models", "devices") and loc[1].isdigit() and isinstance(raw, dict):
        items = raw.get(loc[0]) or []
        index = int(loc[1])
        item = items[index] if index < len(items) else None
        label = item.get("name") or item.get("path") or item.get("tune") if isinstance(item, dict) else item
        entry = f" ({loc[0][:-1]} {index + 1}{f': {label}' if label else ''})"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    message = first["msg"].removeprefix("Value error, ")
    return f"{path}: field {where!r}{entry}: {message}{more}"


def load(path: str | Path) -> LoadedSuite:
    """Read and validate a suite file.

    Raises:
        SuiteError: unreadable, not YAML, or a field that fails validation (file, entry and field named).
    """
    path = Path(path)
    try:
        text = read_text(path)
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read the suite file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{path}: a suite file must be UTF-8 text; byte {exc.start} is not") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML: {first_line(exc)}") from exc
    if not isinstance(raw, dict):
        raise SuiteError(f"{path}: a suite must be a YAML mapping with name, models, recipes and devices. "
                         f"Received: {type(raw).__name__}")
    try:
        spec = Suite.model_validate(raw)
    except ValidationError as exc:
        raise SuiteError(_format(path, raw, exc)) from exc
    digest = hashlib.sha256(json.dumps(spec.model_dump(), sort_keys=True).encode()).hexdigest()
    return LoadedSuite(spec, path.resolve(), digest)
