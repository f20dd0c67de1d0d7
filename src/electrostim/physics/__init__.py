"""Predict what a pulse does to nerve fibres: volume conductors (``field``) and fibre models (``fibers``)."""
