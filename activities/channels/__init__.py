"""The channel's side effects: its records (``records.py``: open, append, compose, close), what
its agents read (``texts.py``, pure), and observing into memory (``observe.py``)."""

from activities.channels.observe import ChannelMemoryActivities
from activities.channels.records import ChannelActivities

__all__ = ["ChannelActivities", "ChannelMemoryActivities"]
