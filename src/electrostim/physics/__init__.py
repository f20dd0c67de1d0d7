"""Predict what a pulse does to nerve fibres: volume conductors (``field``) and fibre models (``fibres``).

The names live in the sub-packages and modules (``electrostim.physics.field``,
``electrostim.physics.fibres``, ``electrostim.physics.population``); this package
re-exports none of them, so importing it stays light (no numba).
"""

__all__: list[str] = []
