"""Custom search attributes the Web UI and `temporal workflow list --query` filter on.

They must be registered on the namespace before a workflow upserts them; the dev stack, the worker
and the test fixtures do it from ``ALL``.
"""

from temporalio.common import SearchAttributeKey

AGENT = SearchAttributeKey.for_keyword("DaemonflowAgent")
STATE = SearchAttributeKey.for_keyword("DaemonflowState")
AWAITING_APPROVAL = SearchAttributeKey.for_bool("DaemonflowAwaitingApproval")

ALL = (AGENT, STATE, AWAITING_APPROVAL)
