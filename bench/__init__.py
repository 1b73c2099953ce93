"""Benchmarks of the harness (`make bench`, `python -m bench`); not part of `make test`."""
