"""Secure-aggregation client of an edge agent (DESIGN section 7).

Kept Python 3.8 compatible: edge boards import this package.
"""

from __future__ import annotations

from edge_agent.secagg.client import SecAggClient

__all__ = ["SecAggClient"]
