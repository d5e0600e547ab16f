"""Benchmarks: each module runs alone (``python -m bench.bench_training``) and returns its figures;
``python -m bench`` (``make bench``) runs them all, prints one table and writes bench/results.json."""
