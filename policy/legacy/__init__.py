"""Policy engine 1, frozen for replaying histories recorded before ``policy-engine-2``."""

from policy.legacy.engine import evaluate, rule_for_approve_always

__all__ = ["evaluate", "rule_for_approve_always"]
