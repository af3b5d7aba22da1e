"""Sub-commands of ``firecore-wizard``, one module each, imported only when used.

Each module provides ``configure(parser)`` and ``run(args) -> int``.
"""
