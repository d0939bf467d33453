"""The registry type of every plug-in point (defined in :mod:`device_agent.registry`, which the agent
shares: the agent never imports edgesdk)."""

from device_agent.registry import Registry

__all__ = ["Registry"]
