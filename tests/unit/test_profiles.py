from pathlib import Path

import pytest
import yaml

from edgesdk.errors import ProfileError
from edgesdk.profiles import PROFILE_DIR, list_profiles, load_profile

REQUIRED = {"host", "rpi5", "android-cpu", "mobile-gpu", "ethos-u55", "edgetpu", "cortex-m4", "cortex-m7"}


def test_all_required_profiles_ship_and_validate():
    assert REQUIRED <= set(list_profiles())
    for name in list_profiles():
        profile = load_profile(name)
        assert profile.name == name
        assert profile.memory.ram_bytes > 0 and profile.memory.storage_bytes > 0
        assert set(profile.precisions) <= set(profile.roofline.peak_macs_per_s)
        # every shipped profile says where its numbers come from
        assert (PROFILE_DIR / f"{name}.yaml").read_text().lstrip().startswith("#")


def test_int8_only_npus_and_mcu_budgets():
    assert load_profile("edgetpu").precisions == ("int8",)
    assert "fp32" not in load_profile("ethos-u55").precisions
    m4 = load_profile("cortex-m4")
    assert m4.memory.ram_bytes == 640 * 1024 and m4.memory.storage_bytes == 2 * 1024 * 1024
    assert m4.compute_class == "mcu" and not m4.supports_operator("CUSTOM:foo")
    assert load_profile("host").supports_operator("ANYTHING")


def _write(tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load((PROFILE_DIR / "rpi5.yaml").read_text())
    for key, value in changes.items():
        if value is None:
            raw.pop(key)
        else:
            raw[key] = value
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_user_profile_by_path(tmp_path):
    profile = load_profile(_write(tmp_path, name="mine"))
    assert profile.name == "mine" and profile.path.endswith("mine.yaml")


@pytest.mark.parametrize("changes, field", [
    ({"memory": {"ram_bytes": "lots", "storage_bytes": 1, "weights_in_ram": True}}, "memory.ram_bytes"),
    ({"compute_class": "quantum"}, "compute_class"),
    ({"precisions": ["int3"]}, "precisions"),
    ({"surprise": 1}, "surprise"),
    ({"power": None}, "power"),
])
def test_wrong_field_names_file_and_field(tmp_path, changes, field):
    path = _write(tmp_path, **changes)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert str(path) in str(info.value)
    assert repr(field) in str(info.value)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ProfileError, match="unknown profile 'pi6'.*rpi5"):
        load_profile("pi6")


def test_not_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(path)
