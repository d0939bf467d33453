"""The plug-in conformance suite (as Optuna ships for samplers): every registered technique, search
value, search dimension, URL scheme, model format and device runtime is held to the same contract, so a
new one is tested by registering it. No training; the one model is a tiny one built here."""

from __future__ import annotations

import numpy as np
import pytest

from device_agent.registry import Registry
from device_agent.runtime import RUNTIMES, NoRuntimeError, load
from edgesdk.deploy import SCHEMES, scheme_of, validate_url
from edgesdk.errors import DeployError, ModelError, RecipeError
from edgesdk.intake import MODEL_FORMATS, expected, identify
from edgesdk.kinds import ModelForm, StepKind
from edgesdk.profiles import load_profile
from edgesdk.provision import INSTALLABLE
from edgesdk.search.space import Candidate, build, dimension_values, step_text
from edgesdk.techniques import DIMENSIONS, REGISTRY, parse_recipe, parse_step
from edgesdk.techniques.cluster import kmeans
from edgesdk.techniques.flatbuffer import nm_keep

TECHNIQUES = sorted(REGISTRY)
SEARCH_VALUES = [(name, value) for name in TECHNIQUES for value in REGISTRY[name].search_values]
LABELS = [(dim, label) for dim in DIMENSIONS for label in dimension_values(dim)]


# --- the registry type ------------------------------------------------------------------------------------

def test_a_registry_refuses_a_second_entry_and_names_the_known_keys():
    reg: Registry[int] = Registry("widget", ValueError)
    reg.add("a", 1)
    reg.add("b", 2)
    with pytest.raises(ValueError, match="widget 'a' is registered twice"):
        reg.add("a", 3)
    with pytest.raises(ValueError, match=r"unknown widget 'c'; expected one of a, b"):
        reg.lookup("c")
    assert list(reg) == ["a", "b"] and reg["b"] == 2 and len(reg) == 2


@pytest.mark.parametrize("registry", [REGISTRY, DIMENSIONS, SCHEMES, MODEL_FORMATS, RUNTIMES],
                         ids=lambda r: r.what)
def test_every_plug_in_point_is_a_registry(registry):
    assert isinstance(registry, Registry) and len(registry) > 0
    with pytest.raises(Exception, match=f"unknown {registry.what} 'no-such-thing'; expected one of"):
        registry.lookup("no-such-thing")


# --- techniques and search values --------------------------------------------------------------------------

@pytest.mark.parametrize("name, value", SEARCH_VALUES, ids=[f"{n}={v}" for n, v in SEARCH_VALUES])
def test_every_search_value_round_trips_through_its_recipe_text(name, value):
    technique = REGISTRY[name]
    text = technique.format(value)
    step = parse_step(text)
    assert step.name == name
    assert technique.format(step.value) == text  # the parsed value is written back the same way
    assert parse_step(technique.format(step.value)).value == step.value


@pytest.mark.parametrize("dimension, label", LABELS, ids=[f"{d}:{v}" for d, v in LABELS])
def test_every_dimension_value_is_a_step_of_that_dimension_and_forms_a_candidate(dimension, label):
    if label == "none":
        assert DIMENSIONS[dimension].optional
        return
    step = parse_step(step_text(dimension, label))
    assert REGISTRY[step.name].dimension == dimension
    candidate = Candidate.of({"precision": "int8", dimension: label} if dimension != "precision" else
                             {"precision": label})
    assert candidate[dimension] == label
    recipe = parse_recipe(candidate.recipe)  # the candidate's recipe is one the parser takes
    assert str(recipe) == str(parse_recipe(str(recipe)))


@pytest.mark.parametrize("name", TECHNIQUES)
def test_a_malformed_value_is_refused_naming_the_technique_and_what_was_received(name):
    for bad in (f"{name}=@@", f"{name}=-3"):
        with pytest.raises(RecipeError) as info:
            parse_step(bad)
        message = str(info.value)
        assert message.startswith(name) and message.endswith(f"Received: {bad}"), message


@pytest.mark.parametrize("name", TECHNIQUES)
def test_a_form_a_technique_does_not_take_is_refused_saying_what_it_takes(name):
    technique = REGISTRY[name]
    refused = [form for form in ModelForm if form not in technique.forms]
    for form in refused:
        with pytest.raises(RecipeError) as info:
            technique.refuse(form, "m", "because")
        assert f"{name} cannot apply to m, because; {name} takes" in str(info.value)
    for form in technique.forms:
        technique.refuse(form, "m", "because")  # no error


@pytest.mark.parametrize("name", TECHNIQUES)
def test_a_technique_declares_a_known_dimension_and_a_conversion_its_precision(name):
    technique = REGISTRY[name]
    assert technique.dimension is None or technique.dimension in DIMENSIONS
    assert (technique.kind == StepKind.CONVERT) == (technique.precision is not None)
    if technique.search_values:
        assert technique.dimension is not None, f"{name} has search values but no dimension: never searched"
    assert technique.help.strip(), f"{name} has no help"


def test_every_dimension_restricts_the_space_by_itself():
    host = load_profile("host")
    full = build(host)
    assert set(full.dimensions()) == set(DIMENSIONS)
    for dim in DIMENSIONS:
        value = next(v for v in full[dim] if v != "none")
        restricted = build(host, {dim: [value]})
        assert restricted[dim] == (value,)
        assert all(restricted[d] == full[d] for d in DIMENSIONS if d != dim)
    with pytest.raises(RecipeError, match="unknown search dimension 'threads'"):
        build(host, {"threads": ["2"]})


# --- numeric helpers, on small arrays ----------------------------------------------------------------------

def test_kmeans_replaces_values_by_k_centroids_that_are_cluster_means():
    values = np.array([0.0, 0.1, 0.2, 5.0, 5.1, 5.2, 10.0, 10.2], dtype=np.float32)
    out = kmeans(values, 3)
    assert out.shape == values.shape and len(np.unique(out)) == 3
    np.testing.assert_allclose(np.unique(out), [0.1, 5.1, 10.1], atol=1e-6)
    assert len(np.unique(kmeans(np.array([1.0, 1.0, 2.0]), 8))) == 2  # never more centroids than values


def test_nm_keep_keeps_the_n_largest_of_every_m():
    score = np.array([[1.0, 4.0, 2.0, 3.0, 8.0, 5.0, 7.0, 6.0]])
    keep = nm_keep(score, 2, 4)
    assert keep.tolist() == [[False, True, False, True, True, False, True, False]]
    assert nm_keep(np.arange(12.0).reshape(3, 4), 1, 4).sum(axis=-1).tolist() == [1, 1, 1]


# --- the flatbuffer path of every technique that takes a .tflite -------------------------------------------

@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((8, 8, 1)), tf.keras.layers.Conv2D(8, 3, activation="relu"),
                                 tf.keras.layers.Flatten(), tf.keras.layers.Dense(16, activation="relu"),
                                 tf.keras.layers.Dense(4)])
    where = tmp_path_factory.mktemp("tiny")
    (where / "tiny.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    rng = np.random.default_rng(0)  # samples to calibrate and score on (wanda, sparsegpt, int8)
    np.savez(where / "samples.npz", x=rng.normal(size=(16, 8, 8, 1)).astype(np.float32))
    return where / "tiny.tflite"


FLATBUFFER_STEPS = [REGISTRY[n].format(REGISTRY[n].search_values[0]) if REGISTRY[n].search_values else n
                    for n in TECHNIQUES if ModelForm.TFLITE in REGISTRY[n].forms
                    and REGISTRY[n].kind != StepKind.POST]


@pytest.mark.parametrize("step", FLATBUFFER_STEPS)
def test_the_flatbuffer_path_keeps_operators_inputs_and_outputs(tiny_tflite, tmp_path, step):
    from edgesdk.compress import compress
    from edgesdk.tflite.facts import analyze

    before = analyze(tiny_tflite)
    out = tmp_path / "o.tflite"
    compress(tiny_tflite, "host", step, out, tiny_tflite.parent / "samples.npz")
    after = analyze(out)
    assert [t.shape for t in after.inputs] == [t.shape for t in before.inputs]
    assert [t.shape for t in after.outputs] == [t.shape for t in before.outputs]
    kept = {op for op in after.operators if op not in ("QUANTIZE", "DEQUANTIZE")}
    assert set(before.operators) <= kept, f"{step} lost {set(before.operators) - kept}"


# --- URL schemes, model formats, device runtimes -----------------------------------------------------------

@pytest.mark.parametrize("prefix", list(SCHEMES))
def test_every_scheme_parses_its_own_example_and_refuses_an_empty_url(prefix):
    scheme = SCHEMES[prefix]
    example = scheme.example.split("[", 1)[0].replace("SERIAL", "R58M123ABC")
    assert scheme_of(example) is scheme and validate_url(example) == example
    with pytest.raises(DeployError):
        validate_url(prefix)
    assert scheme.example.startswith(prefix)


def test_an_unknown_scheme_lists_every_registered_one():
    with pytest.raises(DeployError) as info:
        validate_url("ftp://pi@nowhere")
    for scheme in SCHEMES.values():
        assert scheme.example in str(info.value)


@pytest.mark.parametrize("name", list(MODEL_FORMATS))
def test_every_model_format_is_named_in_messages_and_refuses_a_file_that_only_claims_it(name, tmp_path):
    fmt = MODEL_FORMATS[name]
    assert fmt.what in expected()
    if fmt.marker:
        (tmp_path / "m").mkdir()
        with pytest.raises(ModelError, match=f"without {fmt.marker}"):
            identify(tmp_path / "m")
        return
    assert fmt.suffixes and fmt.check is not None
    for suffix in fmt.suffixes:
        fake = tmp_path / f"m{suffix}"
        fake.write_bytes(b"this is not a model at all")
        with pytest.raises(ModelError, match=str(fake)):
            identify(fake)


@pytest.mark.parametrize("name", list(RUNTIMES))
def test_every_device_runtime_names_its_module_and_what_installs_it(name):
    runtime = RUNTIMES[name]
    assert all(part.isidentifier() for part in runtime.module.split(".")) and callable(runtime.factory)
    if runtime.install:
        assert INSTALLABLE[runtime.dist] is runtime and any(p.startswith(runtime.dist) for p in runtime.install)


def test_the_agent_loads_the_first_runtime_that_imports_and_refuses_an_unknown_one():
    assert load().name == next(iter(RUNTIMES))  # ai_edge_litert is installed here
    with pytest.raises(NoRuntimeError, match="unknown device runtime 'onnxruntime'; expected one of"):
        load("onnxruntime")


def test_devices_setup_refuses_a_scheme_without_a_shell_naming_the_ones_it_takes():
    from edgesdk.provision import setup

    over = " and ".join(s.prefix for s in SCHEMES.values() if s.setup)
    assert over == "ssh:// and adb://"
    for scheme in (s for s in SCHEMES.values() if not s.setup):
        url = scheme.example.split("[", 1)[0]
        with pytest.raises(DeployError, match=f"devices setup works over {over}; {url} is not such a device"):
            setup(url)
