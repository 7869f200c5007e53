"""The ``va`` command: argument parsing and terminal output over va_core's functions.

It is the top layer: ``va demo`` ends in va_serving's server and ``va experiment`` runs the
paper's reproduction, so the command imports every layer and nothing imports it.
"""
