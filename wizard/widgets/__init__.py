"""Reusable Textual widgets of the wizard."""
