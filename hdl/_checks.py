"""Parameter checks shared by the components: every message names the parameter, the value
and what is allowed."""

__all__ = ["check_int", "check_bool", "check_choice"]


def check_int(name, value, lo, hi=None):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        allowed = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name}: {value} is out of range (allowed {allowed})")
    return value


def check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return value


def check_choice(name, value, choices):
    if value not in choices:
        names = ("none" if choice is None else str(choice) for choice in choices)
        raise ValueError(f"{name}: unknown value {value!r}; expected one of {', '.join(names)}")
    return value
