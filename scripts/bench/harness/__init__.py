"""The benchmark harness behind ``scripts/bench/run``."""
