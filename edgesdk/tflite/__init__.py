"""The .tflite flatbuffer itself: its facts (operators and versions, parameters, MACs, tensor bytes,
peak activations) in :mod:`.facts`."""
