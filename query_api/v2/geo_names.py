"""v2's `visit:country_name`, `visit:region_name` and `visit:city_name` (Plausible's display
dimensions): the engines know only the stored codes, so a question is asked of them with each
name dimension replaced by its code's (`coded`), and the answer's values named again (`named`).

- A name is a function of its code (one name per country or region code; a city is stored by
  its name), so grouping by the code groups exactly as by the name.
- A filter on a name becomes one on the codes whose names pass it (query_api/geo.py's table);
  on `visit:city_name`, the same filter on `visit:city`.
- Ordering by a name dimension orders by its code (the order of names may differ).
"""

from __future__ import annotations

from dataclasses import replace

from query_api import geo
from query_api.errors import BadRequest
from query_api.v2.model import (
    CONTAINS,
    CONTAINS_NOT,
    IS,
    IS_NOT,
    MATCHES,
    MATCHES_NOT,
    NEGATED_OPERATORS,
    Behaviour,
    Condition,
    FilterTree,
    Junction,
    Negation,
    Result,
    Row,
    V2Query,
)

NAMED = geo.NAMED
NONE = ""  # a code no visit has: `is` it matches nothing, `is_not` everything


def uses_names(query: V2Query) -> bool:
    return any(d in NAMED for d in query.dimensions) or any(_names_in(f) for f in query.filters)


def coded(query: V2Query) -> V2Query:
    """The question with name dimensions and filters on names replaced by their codes'."""
    return replace(
        query,
        dimensions=tuple(NAMED.get(d, d) for d in query.dimensions),
        order_by=tuple((NAMED.get(k, k), d) for k, d in query.order_by),
        filters=tuple(_coded_tree(f) for f in query.filters),
    )


def named(query: V2Query, result: Result) -> Result:
    """The coded question's answer with the asked name dimensions' values named."""
    at = [(i, d) for i, d in enumerate(query.dimensions) if d in NAMED]
    if not at:
        return result
    rows = []
    for row in result.rows:
        values = list(row.dimensions)
        for i, dimension in at:
            values[i] = geo.display(dimension, values[i])
        rows.append(Row(tuple(values), row.metrics))
    return replace(result, rows=tuple(rows))


def _names_in(tree: FilterTree) -> bool:
    if isinstance(tree, Condition):
        return tree.dimension in NAMED
    if isinstance(tree, Junction):
        return any(_names_in(c) for c in tree.children)
    return _names_in(tree.child)


def _coded_tree(tree: FilterTree) -> FilterTree:
    if isinstance(tree, Condition):
        return _coded_condition(tree) if tree.dimension in NAMED else tree
    if isinstance(tree, Junction):
        return Junction(tree.op, tuple(_coded_tree(c) for c in tree.children))
    if isinstance(tree, Negation):
        return Negation(_coded_tree(tree.child))
    assert isinstance(tree, Behaviour)
    return Behaviour(tree.done, _coded_tree(tree.child))


def _coded_condition(c: Condition) -> Condition:
    dimension = NAMED[c.dimension]
    if dimension == "visit:city":  # stored by name
        return replace(c, dimension=dimension)
    table = geo.names_of(dimension.removeprefix("visit:"))
    codes = tuple(_passing(c, table)) or (NONE,)
    return Condition(IS_NOT if c.op in NEGATED_OPERATORS else IS, dimension, codes)


def _passing(c: Condition, table: dict[str, str]) -> list[str]:
    """The codes whose names pass the condition's plain form (`is`, `contains`, `matches`)."""
    if c.op in (MATCHES, MATCHES_NOT):
        return _matching(c, table)
    fold = (lambda text: text) if c.case_sensitive else str.lower
    values = [fold(v) for v in c.values]
    if c.op in (IS, IS_NOT):
        return [code for code, name in table.items() if fold(name) in values]
    assert c.op in (CONTAINS, CONTAINS_NOT)
    return [code for code, name in table.items() if any(v in fold(name) for v in values)]


def _matching(c: Condition, table: dict[str, str]) -> list[str]:
    """RE2 patterns, as the engine runs them (DuckDB's regexp: linear time, whatever the
    pattern); an invalid one is a 400, as the engine makes it."""
    import duckdb

    from archive.parquet import connect

    con = connect()
    options = "" if c.case_sensitive else "i"
    found: set[str] = set()
    for pattern in c.values:
        try:
            rows = con.execute(
                "SELECT c FROM (SELECT unnest($1) AS c, unnest($2) AS n) "
                "WHERE regexp_matches(n, $3, $4)",
                [list(table), list(table.values()), pattern, options],
            ).fetchall()
        except duckdb.Error as error:
            reason = str(error).split(":", 1)[-1].strip()
            raise BadRequest(
                f"Invalid filters. Invalid regular expression '{pattern}' in the filter on "
                f"{c.dimension}: {reason}"
            ) from None
        found.update(str(r[0]) for r in rows)
    return sorted(found)
