"""Benchmarks of offer_realtime (issue 5); see README.md and docs/benchmarks.md."""
