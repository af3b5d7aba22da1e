"""firecore-wizard front ends: the CLI, the headless runner and the Textual app.

Nothing is imported eagerly here, so ``import wizard.cli`` stays fast and Textual-free.
"""

__version__ = "0.1.0"
