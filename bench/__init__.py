"""Benchmarks: each compares the tool against a baseline measured in the same run (ratios)."""
