"""The ``stagelink`` command line (Typer + Rich).

Thin: it calls the same functions the scheduler calls.
"""
