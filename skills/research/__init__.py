"""Research: local corpora (files and passage sets indexed in SQLite), the retrievers that
search them, the citations code checks against them, and web search and fetching.

A corpus is one SQLite file per name under `<data_dir>/indexes/`, so a user can copy, back up
or delete one without touching the others, and query it with their own tools."""
