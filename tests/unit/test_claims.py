"""Claims shared by tune's and the suite's workers: first come holds, a lapsed or stale holder is replaced."""

from __future__ import annotations

import time

from edgesdk.claims import Claims


def test_first_claim_holds_until_its_lease_runs_out_or_its_holder_is_stale(tmp_path):
    claims = Claims(f"sqlite:///{tmp_path / 'c.sqlite'}")
    assert claims.claim("run", "cell", "a", lease_s=60) == "a"
    assert claims.claim("run", "cell", "b", lease_s=60) == "a"          # a's lease holds
    assert claims.claim("other", "cell", "b") == "b"                   # scopes are apart
    time.sleep(0.05)
    assert claims.claim("run", "cell", "b", lease_s=0.01) == "b"        # a's lease ran out: b takes over
    assert claims.claim("run", "cell", "c", stale=lambda holder: holder == "x") == "b"
    assert claims.claim("run", "cell", "c", stale=lambda holder: holder == "b") == "c"  # b is gone
    assert claims.holders("run") == {"cell": "c"}
    claims.release("run", "cell")
    assert claims.holder("run", "cell") is None and claims.claim("run", "cell", "d") == "d"
