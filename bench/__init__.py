"""Benchmarks: each prints one JSON line with its figures and a baseline measured in the same
run."""
