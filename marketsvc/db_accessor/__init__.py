"""Async data functions. Each takes the session first, raises domain errors, never commits."""
