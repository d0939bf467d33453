import pytest

from edgesdk.errors import RecipeError
from edgesdk.techniques import REGISTRY, Step, parse_recipe


def test_composed_recipe_orders_keras_steps_and_keeps_one_conversion():
    recipe = parse_recipe("int8,cluster=16,prune=0.5")
    assert [s.name for s in recipe.keras_steps] == ["prune", "cluster"]
    assert recipe.keras_steps[0].value == 0.5
    assert recipe.keras_steps[1].value == 16
    assert recipe.convert == Step("int8", False)
    assert str(recipe) == "prune=0.5,cluster=16,int8"


def test_defaults_fp32_and_qat_implies_int8():
    assert parse_recipe("prune=0.5").convert.name == "fp32"
    assert parse_recipe("qat").convert.name == "int8"
    assert parse_recipe("qat").precision == "int8"


def test_nm_and_int8_io_values():
    assert parse_recipe("prune=2:4,int8").keras_steps[0].value == (2, 4)
    recipe = parse_recipe("int8=io")
    assert recipe.convert.value is True
    assert str(recipe) == "int8=io"
    assert str(parse_recipe("prune=2:4")) == "prune=2:4,fp32"


@pytest.mark.parametrize("text, fragment", [
    ("", "empty recipe"),
    ("int9", "unknown technique 'int9'"),
    ("prune", "prune needs a value"),
    ("prune=1.5", "must be in (0, 1)"),
    ("prune=4:2", "0 < N < M"),
    ("prune=abc", "sparsity in (0, 1) or N:M"),
    ("cluster=1", "from 2 to 256"),
    ("int8,fp16", "one conversion step"),
    ("int8,int8", "appears twice"),
    ("qat,int16x8", "cannot be combined"),
    ("fp16=2", "takes no value"),
    ("int8=x", "int8=io"),
])
def test_bad_recipes_are_refused_with_a_reason(text, fragment):
    with pytest.raises(RecipeError, match=None) as info:
        parse_recipe(text)
    assert fragment in str(info.value)


def test_every_technique_has_a_parser_and_help():
    for name, technique in REGISTRY.items():
        assert technique.help
        assert technique.kind in ("keras", "convert", "post")
        value = next((v for v in technique.search_values if not isinstance(v, bool)), None)
        text = name if value is None else f"{name}={value[0]}:{value[1]}" if isinstance(value, tuple) \
            else f"{name}={value}"
        recipe = parse_recipe(text if name != "distill" else f"prune=0.5,{text}")  # distill modifies others
        assert name in str(recipe) and parse_recipe(str(recipe)) == recipe  # printed recipes parse back


def test_post_steps_come_last():
    recipe = parse_recipe("strip,prune=0.5,int8=io")
    assert [s.name for s in recipe.post_steps] == ["strip"]
    assert str(recipe) == "prune=0.5,int8=io,strip"
