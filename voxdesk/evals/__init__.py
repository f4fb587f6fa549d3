"""Accuracy evaluations on real data, registered under ``voxdesk eval …`` (each prints a table; ``--json`` adds one
JSON object as the last line of standard output)."""

from __future__ import annotations
