"""The demo piCore mirror: a realistic fake mirror built with real tools, and a server for it.

Tests use it as their piCore mirror; ``firecore-wizard --demo`` serves it on 127.0.0.1 so the
whole wizard can be tried without internet. ``factory`` builds it (``build_mirror``,
``cached_mirror``), ``server`` serves a directory like tinycorelinux.net's Apache does, with
fault injection for tests. Everything built from it carries the ``FIRECORE-DEMO`` marker.
"""

from __future__ import annotations
