"""The auto-accept policy engine: pure (stdlib + ``models``), so workflows and config can both use it.

``policy.engine`` judges a tool call against rules; ``policy.shell`` reads a shell command the way
the sandbox's shell will. Nothing here does I/O, reads a clock or keeps state between calls.
"""
