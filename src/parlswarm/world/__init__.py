"""The offline wide-search world: Factbook pages, BM25 search tools, fields, tasks, expert."""
