"""Benchmarks: what Image Studio adds to the provider's own time, measured on loopback.

Run one with ``python -m bench.<name>`` or all with ``python -m bench.run_all``;
see BENCHMARKS.md for the targets and the latest figures.
"""
