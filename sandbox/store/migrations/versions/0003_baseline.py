"""Baseline: the schema of version 3 (journal.content_type, conformance_marks).

Revision ID: 0003
Revises:
"""

from __future__ import annotations

revision = "0003"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # databases at this version were made by create_all


def downgrade() -> None:
    pass
