"""The edgesdk device agent: runs on the device with stdlib, numpy and a TFLite runtime only."""

__version__ = "0.1.0"
