"""Greedy all-pairs covering: every pair of values of any two factors appears in at least
one row. Deterministic, so CI always runs the same matrix."""

import itertools


def pairwise(factors, *, valid=lambda row: True):
    names = list(factors)
    uncovered = {((a, va), (b, vb))
                 for a, b in itertools.combinations(names, 2)
                 for va in factors[a] for vb in factors[b]
                 if valid({a: va, b: vb})}
    rows = []
    while uncovered:
        (a, va), (b, vb) = min(uncovered, key=repr)
        row = {a: va, b: vb}
        for name in names:
            if name in row:
                continue
            def gain(value):
                trial = {**row, name: value}
                if not valid(trial):
                    return -1
                return sum(((n, trial[n]), (name, value)) in uncovered or
                           ((name, value), (n, trial[n])) in uncovered for n in row)
            row[name] = max(factors[name], key=gain)
        rows.append(row)
        uncovered -= {((x, row[x]), (y, row[y])) for x, y in itertools.combinations(names, 2)}
    return rows
