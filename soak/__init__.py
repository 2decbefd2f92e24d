"""The reliability soak: stagelink under CRM faults, CRM changes, usage and ``kill -9``.

``python -m soak.run --duration 10m`` (or ``make soak``) runs it; ``tests/soak`` runs a
short one inside the test suite. See :mod:`soak.run`.
"""
