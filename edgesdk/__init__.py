"""edgesdk: compress Keras and TFLite models for a hardware profile and measure them on the device.

The Python API mirrors the CLI::

    import edgesdk
    report = edgesdk.inspect_model("model.tflite")
    result = edgesdk.compress("model.keras", profile="rpi5", recipe="prune=0.5,int8",
                              output="model_int8.tflite", data="val.npz")
    measurement = edgesdk.bench("model_int8.tflite", device="local")
    tuned = edgesdk.tune("model.keras", "rpi5", "tuned/", devices=["pi5"], data="val.npz",
                         constraints=edgesdk.Constraints(max_accuracy_drop=0.01))
"""

from device_agent.protocol import SCHEMA as MEASUREMENT_SCHEMA
from device_agent.protocol import BenchSettings

from .compress import CompressResult, compress
from .deploy.driver import device_info
from .errors import (
                     DataError,
                     DeployError,
                     EdgeSdkError,
                     MeasurementError,
                     ModelError,
                     ProfileError,
                     RecipeError,
                     StoreError,
)
from .feasibility import Feasibility
from .feasibility import check as check_fit
from .inspection import inspect_model
from .intake import ModelSource, identify
from .measure import Measurement, bench
from .profiles import Profile, list_profiles, load_profile
from .search import Constraints, TuneResult, tune
from .search.predict import calibrate
from .store import Store
from .techniques import Recipe, parse_recipe
from .tflite.facts import ModelReport
from .tflite.facts import analyze as inspect_tflite

__version__ = "0.1.0"

__all__ = [
    "MEASUREMENT_SCHEMA", "BenchSettings", "CompressResult", "Constraints", "DataError", "DeployError",
    "EdgeSdkError", "Feasibility", "Measurement", "MeasurementError", "ModelError", "ModelReport", "ModelSource",
    "Profile",
    "ProfileError", "Recipe", "RecipeError", "Store", "StoreError", "TuneResult", "bench", "calibrate", "check_fit",
    "compress", "device_info", "identify", "inspect_model", "inspect_tflite", "list_profiles", "load_profile",
    "parse_recipe", "tune",
]
