"""Helpers shared by the tests: fixture mirrors, namespace labs, boot trees, wheels."""
