"""Custom search attributes the Web UI and `temporal workflow list --query` filter on.

They must be registered on the namespace before a workflow upserts them; the dev stack, the worker
and the test fixtures do it from ``ALL``.
"""

from temporalio.common import SearchAttributeKey

AGENT = SearchAttributeKey.for_keyword("DaemonflowAgent")
STATE = SearchAttributeKey.for_keyword("DaemonflowState")
AWAITING_APPROVAL = SearchAttributeKey.for_bool("DaemonflowAwaitingApproval")
CHANNEL = SearchAttributeKey.for_keyword("DaemonflowChannel")
"""On a channel and on each of its agents' conversations: the channel id."""
MEMBERS = SearchAttributeKey.for_keyword_list("DaemonflowMembers")
"""On a channel: its agents and people (``DaemonflowMembers = 'analyst'``)."""

ALL = (AGENT, STATE, AWAITING_APPROVAL, CHANNEL, MEMBERS)
