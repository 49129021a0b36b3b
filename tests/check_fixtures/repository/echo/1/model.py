"""A model file for check's fixtures; check never runs it."""
