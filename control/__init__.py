"""The typed clients of ``ConversationWorkflow`` and ``ChannelWorkflow``: the only code outside
workers and workflows that talks to conversations and channels.

- ``control.conversations.Conversations``: start (update-with-start, one id-conflict policy),
  find, list (visibility), what waits for a person across conversations.
- ``control.conversation.Conversation``: status, history, events, steering signals, messages and
  their turns, decisions (the ``decide`` update).
- ``control.turns``: a turn that waits (for a person, a resume, or longer than the caller's
  budget) is a ``TurnWaiting`` result, learnt at once through the ``watch_turn`` update.
- ``control.channels.Channels`` / ``control.channel.Channel`` / ``control.posts``: the same for
  ``ChannelWorkflow`` (start, find, list; status, history, scores, events, steering, posts that
  wait answered with ``PostWaiting``); ``control.relevance``: a hypothetical message scored by the
  workers (``RelevanceCalculationWorkflow``).
- ``control.visibility``: the one builder of visibility queries.
- ``control.errors`` / ``control.failures``: Temporal's exceptions as domain errors; the API maps
  them to problem documents, the CLI to messages and exit codes.
"""
