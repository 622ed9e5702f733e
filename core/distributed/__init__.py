"""Scoring, evaluation and mining spread over a Ray cluster (`--ray ADDRESS --workers N`).

`settings` holds the one frozen `ClusterSettings`; `session` connects to Ray (or starts a local
instance) and owns the workers; `pool` keeps every worker busy and streams finished shards back
as they complete; `workers` are the Ray actors (each loads its model once); `scoring` is a
`Scorer` whose work goes to the workers, and `cached` scores a list of conversations through the
SQLite score cache. Ray is an optional dependency: nothing here imports it at module level.
"""
