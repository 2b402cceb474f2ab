"""``Contract``: the base of the monitoring, cache, analytics and optimisation contracts.

An unknown field is an error, not silently lost, so a record written by newer code and read by
older code (or a typo in ``temporal workflow start --input``) says so.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    """Base of the monitoring, cache and analytics contracts: an unknown field is an error, not lost."""

    model_config = ConfigDict(extra="forbid")
