"""Quality of a model with several outputs: each output compared with its own counterpart, the headline
SQNR the worst of them, and the cells that show it."""

from __future__ import annotations

import numpy as np

from edgesdk.evaluate import paired_outputs, quality
from edgesdk.quality import Quality
from edgesdk.search.cells import per_output, quality_heading


def _outputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    return {"scores": rng.standard_normal((64, 10)).astype(np.float32),
            "boxes": rng.standard_normal((64, 4)).astype(np.float32)}


def test_a_collapsed_second_output_sets_the_headline():
    reference = _outputs()
    rng = np.random.default_rng(1)
    # the converter wrote the outputs in the other order; the boxes head now outputs noise
    test = {"boxes": rng.standard_normal((64, 4)).astype(np.float32),
            "scores": reference["scores"] + 0.01 * rng.standard_normal((64, 10)).astype(np.float32)}
    found = Quality.from_dict(quality(reference, test, None, classifier=True))
    assert found is not None and found.outputs is not None
    by_name = {o["name"]: o["sqnr_db"] for o in found.outputs}
    assert by_name["scores"] > 30 and by_name["boxes"] < 1
    assert found.sqnr_db == by_name["boxes"]               # the worst output, not the first
    assert found.top1_agreement is not None and found.top1_agreement > 0.95   # agreement: the first output's
    row = {"quality": found.to_dict()}
    assert per_output(row) == f"SQNR per output: scores {by_name['scores']:.1f} dB · boxes {by_name['boxes']:.1f} dB"


def test_outputs_pair_in_order_when_names_differ_and_skip_other_shapes():
    reference = _outputs()
    renamed = {"Identity": reference["scores"], "Identity_1": reference["boxes"][:, :2]}
    pairs = paired_outputs(reference, renamed)
    assert [name for name, _, _ in pairs] == ["scores"]    # the second pair has another shape: left out
    found = quality(reference, {"a": reference["scores"], "b": reference["boxes"]}, None, classifier=False)
    assert found["sqnr_db"] == float("inf") and [o["name"] for o in found["outputs"]] == ["scores", "boxes"]
    heading = quality_heading([{"quality": found}])
    assert heading == "SQNR dB (lowest of 2 outputs)"


def test_one_output_has_no_per_output_part():
    reference = {"y": _outputs()["scores"]}
    found = quality(reference, {"y": reference["y"] * 1.01}, None, classifier=False)
    assert "outputs" not in found and per_output({"quality": found}) == "" and found["sqnr_db"] > 30
