"""Wizard screens, one module per step of the TUI."""
