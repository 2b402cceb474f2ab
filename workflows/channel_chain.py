"""The chain of one post: which agents answer, in which order, and when the budgets end it.

A post's speakers answer in the engine's order (mentioned first, then highest score); each answer
is a message the other agents are scored on, and those it moves to speak join the end of the line
— unless they are already in it (an agent is never queued twice for one post; it may answer again
later in the chain, which is how two agents end up answering each other). The line stops when
nobody is left, or a budget says so: the post's agent replies (``replies_per_post``) or the
channel's tokens (``tokens``). Only the channel's input sets the budgets; a mention inside an
agent's reply brings its agent into the line like any other decision, and counts against the same
budget. Pure bookkeeping: the workflow does the asking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.channel import ChannelBudgets, MemberScore


@dataclass(frozen=True)
class Turn:
    agent: str
    answers: int
    """The seq of the message it is to answer."""
    score: MemberScore


@dataclass
class Chain:
    budgets: ChannelBudgets
    line: list[Turn] = field(default_factory=list)
    replies: int = 0

    def add(self, scores: list[MemberScore], answers: int, speakers: list[str]) -> list[str]:
        """Queue ``speakers`` (in the engine's order) to answer message ``answers``; those already in
        line are not queued again. The agents queued."""
        by_agent = {score.agent: score for score in scores}
        queued = []
        for agent in speakers:
            if any(turn.agent == agent for turn in self.line):
                continue
            self.line.append(Turn(agent, answers, by_agent[agent]))
            queued.append(agent)
        return queued

    def stop_reason(self, tokens_used: int) -> str | None:
        """Why the next turn may not happen (a budget), or None."""
        if not self.line:
            return None
        if self.replies >= self.budgets.replies_per_post:
            return f"reply budget reached: {self.replies} agent replies to this post (replies_per_post {self.budgets.replies_per_post})"
        if self.budgets.tokens is not None and tokens_used >= self.budgets.tokens:
            return f"token budget spent: {tokens_used} of {self.budgets.tokens} tokens used by this channel's agents"
        return None

    def next(self) -> Turn:
        return self.line.pop(0)

    def drop(self) -> list[Turn]:
        """Everyone still in line, when a budget ends the chain."""
        dropped, self.line = self.line, []
        return dropped
