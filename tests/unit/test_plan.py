"""The plan of a tune (edgesdk.search.plan): its order, and what one refused candidate rules out.

The plan is a function of rows done so far; these rows are written as tune writes them (status, params,
size, latency, quality), so the plan's choices can be followed step by step without compressing.
"""

from __future__ import annotations

import pytest

from edgesdk.profiles import load_profile
from edgesdk.search import Constraints, build
from edgesdk.search.plan import Plan, weaker_or_equal
from edgesdk.search.space import Candidate

HOST = load_profile("host")


def cand(**params: str) -> Candidate:
    return Candidate.of(params)


def row(c: Candidate, size: int, drop: float = 0.0, status: str = "estimated", **extra) -> dict:
    quality = {"metric": "accuracy", "samples": 100, "before": 0.95, "after": 0.95 - drop}
    return {"status": status, "recipe": c.recipe, "params": c.params(), "model_bytes": size, "latency_ms": 1.0,
            "quality": quality, **extra}


def test_weaker_or_equal_orders_strengths_within_one_technique_only():
    assert weaker_or_equal(cand(precision="int8", prune="0.5"), cand(precision="int8", prune="0.75"))
    assert weaker_or_equal(cand(precision="int8"), cand(precision="int8", prune="0.5", cluster="16"))
    assert not weaker_or_equal(cand(precision="int8", prune="0.75"), cand(precision="int8", prune="0.5"))
    assert not weaker_or_equal(cand(precision="int8", prune="0.5"), cand(precision="fp32", prune="0.75"))
    # magnitude pruning and Wanda are different techniques: neither bounds the other
    assert not weaker_or_equal(cand(precision="int8", prune="0.5"), cand(precision="int8", prune="wanda=0.75"))
    # fewer clusters is the stronger step
    assert weaker_or_equal(cand(precision="int8", cluster="32"), cand(precision="int8", cluster="16"))


def test_a_broken_quality_limit_rules_out_every_stronger_candidate():
    space = build(HOST, precision=["int8"], prune=["none", "0.5", "0.75"], cluster=["none", "16"],
                  structure=["none"], post=["none"])
    plan = Plan(space, ["size", "accuracy"], Constraints(max_accuracy_drop=0.01), ["int8"])
    broke = cand(precision="int8", prune="0.5")
    rows = {broke.recipe: row(broke, 900, drop=0.2)}
    assert "prune=0.5,int8 already broke it" in plan.ruled_out(cand(precision="int8", prune="0.75"), rows)
    assert plan.ruled_out(cand(precision="int8", prune="0.75", cluster="16"), rows) is not None
    assert plan.ruled_out(cand(precision="int8", cluster="16"), rows) is None   # does not take prune=0.5
    assert plan.ruled_out(broke, rows) is None   # a row never rules itself out
    # A kept row within the limit rules nothing out; a compress refusal does, like a broken limit.
    rows = {broke.recipe: row(broke, 900, drop=0.001)}
    assert plan.ruled_out(cand(precision="int8", prune="0.75"), rows) is None
    rows = {broke.recipe: {**row(broke, 900), "status": "rejected", "stage": "compress", "reason": "no"}}
    assert plan.ruled_out(cand(precision="int8", prune="0.75"), rows).endswith("(refused: no)")
    # A memory refusal does not: a stronger step may fit.
    rows = {broke.recipe: {**row(broke, 900), "status": "rejected", "stage": "memory", "reason": "too big"}}
    assert plan.ruled_out(cand(precision="int8", prune="0.75"), rows) is None


def test_the_plan_tries_precisions_then_single_steps_then_stacks_of_the_worthy():
    space = build(HOST, precision=["fp32", "int8"], prune=["none", "0.5"], cluster=["none"],
                  structure=["none", "channels=0.5"], post=["none", "strip"])
    plan = Plan(space, ["size", "accuracy"], Constraints(max_accuracy_drop=0.01), ["int8", "fp32"])
    rows: dict[str, dict] = {}
    first = plan.next(rows, set())
    assert first.recipe == "int8"
    assert plan.next(rows, {"int8"}).recipe == "fp32"   # a busy candidate is not handed out twice
    sizes = {"int8": 1000, "fp32": 4000}
    for p, size in sizes.items():
        rows[p] = row(cand(precision=p), size)
    order = []
    for _ in range(4):   # the singles on int8 (the smaller base) first; pruning, which cannot shrink a file, last
        nxt = plan.next(rows, set())
        order.append(nxt.recipe)
        shrink = {"structure": 0.6, "post": 0.9}
        factor = min([shrink[d] for d, v in nxt.choice if d in shrink and v != "none"] or [1.0])
        base = sizes[nxt["precision"]]
        rows[nxt.recipe] = row(nxt, int(base * factor))
    assert order[0] in ("channels=0.5,int8", "int8,strip") and order[1] in ("channels=0.5,int8", "int8,strip")
    assert "prune=0.5,int8" not in order[:2]
    assert all(r.endswith("int8") or "int8," in r for r in order[:3]), order
    # Both shrinking steps gained on int8: their stack comes before the sampler is left alone.
    upcoming = []
    for _ in range(6):
        nxt = plan.next(rows, set())
        if nxt is None:
            break
        upcoming.append(nxt.recipe)
        rows[nxt.recipe] = row(nxt, 500)
    assert "channels=0.5,int8,strip" in order + upcoming


def test_a_step_that_broke_the_limit_alone_is_never_stacked():
    space = build(HOST, precision=["int8"], prune=["none"], cluster=["none"],
                  structure=["none", "channels=0.5"], post=["none", "strip"])
    plan = Plan(space, ["size", "accuracy"], Constraints(max_accuracy_drop=0.01), ["int8"])
    rows = {"int8": row(cand(precision="int8"), 1000)}
    channels, strip = cand(precision="int8", structure="channels=0.5"), cand(precision="int8", post="strip")
    rows[channels.recipe] = row(channels, 500, drop=0.3)
    rows[strip.recipe] = row(strip, 900)
    assert plan.next(rows, set()) is None   # the stack would take channels=0.5: ruled out


@pytest.mark.parametrize("objectives", [["size"], ["latency", "accuracy"]])
def test_the_plan_never_repeats_and_ends(objectives):
    space = build(HOST, precision=["fp32", "int8", "fp16"], prune=["none", "0.5"], cluster=["none", "16"],
                  structure=["none"], post=["none", "strip"])
    plan = Plan(space, objectives, Constraints(), ["int8", "fp16", "fp32"])
    rows: dict[str, dict] = {}
    for i in range(len(space) + 1):
        nxt = plan.next(rows, set())
        if nxt is None:
            break
        assert nxt.recipe not in rows
        rows[nxt.recipe] = row(nxt, 1000 - i, latency_ms=1.0 - i / 100)
    assert nxt is None and 0 < len(rows) <= len(space)
