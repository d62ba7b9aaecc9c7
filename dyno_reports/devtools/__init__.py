"""Development tools: synthetic data, seeding, the demo and `make dev`'s launcher (not imported by
production code)."""
