import pytest

from edgesdk.errors import StoreError
from edgesdk.store import Store, default_url, measurement_key

DOC = {"model_sha256": "a" * 64, "device": {"fingerprint": "f" * 16},
       "runtime": {"name": "ai_edge_litert", "version": "2.3.0"}, "settings": {"runs": 5}, "latency": {"p50_ms": 1.5}}


def test_default_url_follows_the_environment(isolated_store):
    assert default_url() == isolated_store


def test_measurement_round_trip_and_keying(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'r.sqlite'}")
    key = measurement_key(DOC["model_sha256"], "f" * 16, DOC["runtime"], {"runs": 5})
    assert store.find_measurement(key) is None
    store.add_measurement(key, DOC, "local")
    assert store.find_measurement(key) == DOC
    assert store.count_measurements() == 1
    # every part of the key matters
    assert key != measurement_key(DOC["model_sha256"], "f" * 16, DOC["runtime"], {"runs": 6})
    assert key != measurement_key(DOC["model_sha256"], "e" * 16, DOC["runtime"], {"runs": 5})
    assert key != measurement_key(DOC["model_sha256"], "f" * 16, {"name": "ai_edge_litert", "version": "2.4"},
                                  {"runs": 5})
    # a second store on the same file sees the result (it is on disk, not in memory)
    assert Store(store.url).find_measurement(key) == DOC


def test_compressions_are_listed_per_source(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'r.sqlite'}")
    record = {"config_hash": "c" * 64, "source_sha256": "s" * 64, "recipe": "int8", "profile": "host",
              "sha256": "o" * 64, "output": "/x.tflite", "quality": None}
    store.add_compression(record)
    store.add_compression(dict(record, source_sha256="t" * 64))
    assert [r["source_sha256"] for r in store.list_compressions("s" * 64)] == ["s" * 64]
    assert len(store.list_compressions()) == 2


def test_unusable_url_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="results store 'nosuchdialect://x': nosuchdialect is not supported"):
        Store("nosuchdialect://x")
    with pytest.raises(StoreError, match="results store 'mysql://me:\\*\\*\\*@host/db': mysql is not supported"):
        Store("mysql://me:hunter2@host/db")   # the password is not shown
    (tmp_path / "notes.sqlite").write_text("my notes")
    with pytest.raises(StoreError, match="file is not a database \\(the file is something else"):
        Store(f"sqlite:///{tmp_path / 'notes.sqlite'}")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError):
        Store(f"sqlite:///{blocker / 'sub' / 'r.sqlite'}")


def test_every_store_method_turns_a_database_failure_into_one_store_error(tmp_path):
    """The file is replaced by something that is not a database after the store opened it: each method
    says so in one StoreError naming what it was doing (none lets an SQLAlchemy error through)."""
    path = tmp_path / "r.sqlite"
    store = Store(f"sqlite:///{path}")
    store.engine.dispose()
    path.write_bytes(b"this is not a database" * 100)
    calls = {"read": [lambda: store.find_measurement("k"), lambda: store.get_artifact("a" * 64),
                      store.list_compressions, store.devices, store.count_measurements],
             "write to": [lambda: store.add_measurement("k", DOC, "local"), lambda: store.add_artifact("a", b"x"),
                          lambda: store.add_device("pi", "ssh://pi@h"), lambda: store.remove_device("pi")]}
    for doing, methods in calls.items():
        for method in methods:
            with pytest.raises(StoreError, match=f"cannot {doing} results store sqlite:///.*not a database"):
                method()
