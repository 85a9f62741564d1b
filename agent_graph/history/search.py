"""Full-text search over history.db (FTS5, bm25 ranking).

Queries come from people and from task text, so they are never passed to MATCH as written: each
term is reduced to its letters and digits and quoted, so quotes, `NEAR(`, `*`, `AND`/`OR`/`NOT`,
`col:` and brackets are searched for as words (or dropped), never read as FTS5 syntax.
"""

from __future__ import annotations

import re
from typing import Any

from sqlite_utils import Database

from .connection import fetch

_WORD = re.compile(r"[^\W_]+")  # what FTS5's unicode61 tokenizer keeps: letters and digits
MAX_TERMS = 32  # a long task text still makes a short query

# Words too common to say two tasks are alike.
STOP_WORDS = frozenset(
    """a about after all also am an and any are as at be been before but by can could did do
    does doing for from get give had has have he her here him his how i if in into is it its
    just let me more most my no not now of on one or our out over please she should so some
    than that the their them then there these they this those to too up us very was we were
    what when where which while who why will with would you your""".split()
)

SNIPPET_OPEN, SNIPPET_CLOSE = "«", "»"  # not [ ], which Rich reads as markup


def all_terms_query(text: str) -> str:
    """Each whitespace-separated chunk of `text` as a quoted phrase; every phrase must match.
    Empty when `text` has no words."""
    phrases = (" ".join(_WORD.findall(chunk)) for chunk in text.split())
    return " ".join(f'"{phrase}"' for phrase in phrases if phrase)


def any_term_query(text: str) -> str:
    """The distinct words of `text` less stop words, quoted and ORed. Empty when none are left."""
    words = dict.fromkeys(word.lower() for word in _WORD.findall(text))
    terms = [w for w in words if w not in STOP_WORDS][:MAX_TERMS]
    return " OR ".join(f'"{term}"' for term in terms)


def search_tasks(
    db: Database,
    query: str,
    *,
    limit: int,
    status: str | None = None,
    agent: str | None = None,
    since: float | None = None,
) -> list[dict[str, Any]]:
    """Tasks whose text, answer or citations match every term of `query`, best first;
    `since` bounds `created_at`."""
    match = all_terms_query(query)
    if not match:
        return []
    where, params = ["1"], {"match": match, "limit": limit}
    if status is not None:
        where.append("tasks.status = :status")
        params["status"] = status
    if agent is not None:
        where.append("tasks.agent = :agent")
        params["agent"] = agent
    if since is not None:
        where.append("tasks.created_at >= :since")
        params["since"] = since
    # A hit in a task's own text or answer outranks the same hit in a passage it cited.
    sql = f"""
        WITH hits AS (
            SELECT rowid AS task_rowid, bm25(tasks_fts) AS rank,
                   snippet(tasks_fts, 1, '{SNIPPET_OPEN}', '{SNIPPET_CLOSE}', '…', 24) AS snippet
            FROM tasks_fts WHERE tasks_fts MATCH :match
            UNION ALL
            SELECT tasks.rowid, bm25(citations_fts) * 0.5, NULL
            FROM citations_fts
            JOIN citations ON citations.rowid = citations_fts.rowid
            JOIN tasks ON tasks.id = citations.task_id
            WHERE citations_fts MATCH :match
        )
        SELECT tasks.id, tasks.text, tasks.status, tasks.agent, tasks.created_at,
               coalesce(nullif(max(hits.snippet), ''), substr(tasks.answer, 1, 200)) AS snippet
        FROM hits JOIN tasks ON tasks.rowid = hits.task_rowid
        WHERE {" AND ".join(where)}
        GROUP BY tasks.rowid
        ORDER BY min(hits.rank), tasks.created_at DESC
        LIMIT :limit
    """
    return fetch(db, sql, params)


def similar_successful(
    db: Database, text: str, *, limit: int, exclude_id: str | None = None
) -> list[dict[str, Any]]:
    """Done tasks with no 'bad' rating whose request shares the most telling words with `text`.
    Rows carry `plan` as stored (JSON text)."""
    match = any_term_query(text)
    if not match:
        return []
    # Only the request column: the planner wants tasks that asked for the same kind of thing.
    sql = """
        SELECT tasks.id, tasks.text, tasks.agent, tasks.plan, tasks.answer
        FROM tasks_fts JOIN tasks ON tasks.rowid = tasks_fts.rowid
        WHERE tasks_fts MATCH :match
          AND tasks.status = 'done'
          AND tasks.id IS NOT :exclude
          AND NOT EXISTS (
              SELECT 1 FROM feedback WHERE feedback.task_id = tasks.id AND rating = 'bad'
          )
        ORDER BY bm25(tasks_fts), tasks.created_at DESC
        LIMIT :limit
    """
    params = {"match": f"text : ({match})", "exclude": exclude_id, "limit": limit}
    return fetch(db, sql, params)


def route_examples(db: Database, text: str, *, limit: int) -> list[dict[str, Any]]:
    """The route corrections most like `text`; the most recent ones when none shares a word."""
    match = any_term_query(text)
    rows: list[dict[str, Any]] = []
    if match:
        rows = fetch(
            db,
            """
            SELECT route_corrections.text, route_corrections.agent
            FROM route_corrections_fts
            JOIN route_corrections ON route_corrections.id = route_corrections_fts.rowid
            WHERE route_corrections_fts MATCH :match
            ORDER BY bm25(route_corrections_fts), route_corrections.id DESC
            LIMIT :limit
            """,
            {"match": match, "limit": limit},
        )
    if not rows:
        rows = fetch(
            db,
            "SELECT text, agent FROM route_corrections ORDER BY created_at DESC, id DESC LIMIT ?",
            (limit,),
        )
    return rows
