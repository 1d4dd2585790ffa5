"""Parameter checks shared by the components: every message names the parameter, the value
and what is allowed."""

__all__ = ["check_block_size", "check_bool", "check_choice", "check_int", "check_ints",
           "check_numbers"]


def check_int(name, value, lo, hi=None):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        allowed = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name}: {value} is out of range (allowed {allowed})")
    return value


def check_block_size(block_size, lanes, top):
    """``block_size``: a multiple of ``lanes`` from ``lanes`` to ``top``."""
    check_int("block_size", block_size, 1)
    if block_size % lanes or not lanes <= block_size <= top:
        raise ValueError(f"block_size: {block_size} is out of range (allowed a multiple "
                         f"of lanes={lanes} from {lanes} to {top})")
    return block_size


def check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return value


def check_choice(name, value, choices):
    if value not in choices:
        names = ("none" if choice is None else str(choice) for choice in choices)
        raise ValueError(f"{name}: unknown value {value!r}; expected one of {', '.join(names)}")
    return value


def check_ints(name, value, count, what):
    """One integer, or a sequence of ``count`` integers (one per ``what``); as a list."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    try:
        values = list(value)
    except TypeError:
        raise TypeError(f"{name}: expected an integer or a sequence of {count} integers, "
                        f"got {value!r}") from None
    if len(values) != count:
        raise ValueError(f"{name}: expected one value or {count} (one per {what}), "
                         f"got {len(values)}")
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"{name}: expected integers, got {v!r}")
    return values


def check_numbers(name, value, count, types=(int, float)):
    """One number or a sequence of ``count`` (one per lane); as a list."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) != count:
        raise ValueError(f"{name}: expected {count} value(s)"
                         f"{' (one per lane)' if count > 1 else ' (a list needs per_lane)'}"
                         f", got {value!r}")
    for v in values:
        if not isinstance(v, types) or isinstance(v, bool):
            raise TypeError(f"{name}: expected a number, got {v!r}")
    return values
