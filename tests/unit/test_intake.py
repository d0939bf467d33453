import hashlib

import pytest

from edgesdk.errors import ModelError
from edgesdk.intake import identify


def test_fingerprint_is_sha256_of_the_bytes(tmp_path):
    path = tmp_path / "m.tflite"
    content = b"\x1c\x00\x00\x00TFL3" + b"\x00" * 40
    path.write_bytes(content)
    source = identify(path)
    assert source.format == "tflite"
    assert source.sha256 == hashlib.sha256(content).hexdigest()
    assert source.size_bytes == len(content)


def test_savedmodel_fingerprint_covers_every_file(tmp_path):
    sm = tmp_path / "sm"
    (sm / "variables").mkdir(parents=True)
    (sm / "saved_model.pb").write_bytes(b"graph")
    (sm / "variables" / "v.data").write_bytes(b"weights")
    first = identify(sm)
    assert first.format == "savedmodel"
    (sm / "variables" / "v.data").write_bytes(b"weight5")
    assert identify(sm).sha256 != first.sha256


@pytest.mark.parametrize("name, content, fragment", [
    ("missing.tflite", None, "no such file"),
    ("empty.tflite", b"", "the file is empty"),
    ("corrupt.tflite", b"this is not a flatbuffer", "not a TFLite flatbuffer"),
    ("corrupt.keras", b"not a zip at all", "not a valid .keras file"),
    ("corrupt.h5", b"not hdf5 either", "not an HDF5 file"),
    ("model.onnx", b"onnx bytes", "unsupported model format '.onnx'"),
    ("noext", b"bytes", "unsupported model format '(no extension)'"),
])
def test_bad_inputs_name_the_file_and_what_was_expected(tmp_path, name, content, fragment):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError) as info:
        identify(path)
    message = str(info.value)
    assert str(path) in message and fragment in message
    assert "\n" not in message


def test_directory_without_saved_model_pb(tmp_path):
    with pytest.raises(ModelError, match="without saved_model.pb"):
        identify(tmp_path)
