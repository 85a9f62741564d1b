"""Research: local corpora (files and passage sets indexed in SQLite), the retrievers that
search them, and later the citations and web search the researcher agent builds on.

A corpus is one SQLite file per name under `<data_dir>/indexes/`, so a user can copy, back up
or delete one without touching the others, and query it with their own tools."""
