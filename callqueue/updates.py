"""Conditional UPDATEs: how many rows one matched, which is how the domain learns that its claim or write won."""
from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Update
from sqlalchemy.orm import Session


def rows_matched(session: Session, statement: Update) -> int:
    """Execute an UPDATE without RETURNING in `session`; return how many rows it matched."""
    # Known by construction: the ORM answers such a statement with a CursorResult, but Session.execute is annotated
    # with Result only, since it cannot promise a cursor for every statement (sqlalchemy/sqlalchemy#12913).
    return cast(CursorResult[Any], session.execute(statement)).rowcount
