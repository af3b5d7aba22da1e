"""Fetching from piCore mirrors: verified cached downloads, directory listings, release lookup.

The lowest domain layer: it knows HTTP and mirrors, nothing about images, the wire or the host.
"""
