"""Benchmark scripts: run them with ``python -m bench.<name>``; they print figures, never assert them."""
