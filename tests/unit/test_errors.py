"""Messages made from other exceptions: one safe way to take their first line."""

from pathlib import Path

from edgesdk.errors import first_line

ROOT = Path(__file__).resolve().parents[2]


def test_first_line_of_an_empty_a_blank_led_and_a_long_message():
    assert first_line(ValueError("")) == "ValueError"
    assert first_line(KeyError()) == "KeyError"
    assert first_line(ValueError("\n   \n  the reason \nmore")) == "the reason"
    assert first_line(ValueError("x" * 500)) == "x" * 200 and len(first_line(ValueError("y" * 50), 10)) == 10


def test_no_module_takes_a_first_line_unsafely():
    unsafe = [f"{p.relative_to(ROOT)}:{n}" for p in sorted((ROOT / "edgesdk").rglob("*.py"))
              for n, line in enumerate(p.read_text().splitlines(), 1) if ".splitlines()[0]" in line]
    assert not unsafe, f"use errors.first_line (an empty message raises IndexError): {unsafe}"
