"""Benchmarks: run the sync engine against many simulated RouterOS routers.

`python -m bench.fleet --quick` for a smoke run; see bench/README.md.
"""
