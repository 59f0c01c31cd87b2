"""The parts of scripts/benchmark_service.py: the bare model, a model service at its push endpoint,
the whole API path, the billable operations a prediction asks for and what they cost."""
