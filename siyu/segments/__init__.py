"""Segments (人群) and the rule language they share with rule tags.

`rules` validates rule trees into typed nodes (errors name the node path), `compile` turns them into
DuckDB SQL with parameters only, `facts` and `sql_facts` keep the per-person facts they are counted
over, `service` defines, counts, recomputes and snapshots segments, `audience` exports hashed audience
files (人群包) for people who consented to data sharing. See docs/segments.md.
"""
