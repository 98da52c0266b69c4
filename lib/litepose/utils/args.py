"""The one range rule for numbers a user gives: to the Python API (``check_number`` raises
``ArgumentError``) and to the scripts (``litepose.cli.int_range`` / ``number_range`` turn
the same message into argparse's one line). NaN, infinity, booleans and text are refused as
numbers; whole numbers must be whole (``2.0`` is 2, ``2.5`` is refused)."""

import math
import numbers


def _text(value):
    return str(value) if isinstance(value, int) else f"{value:g}"


def range_text(low=None, high=None, above=None):
    """``between 1 and 1024``, ``>= 0``, ``> 0 and <= 8``."""
    if above is not None:
        return f"> {_text(above)}" + (f" and <= {_text(high)}" if high is not None else "")
    if low is not None and high is not None:
        return f"between {_text(low)} and {_text(high)}"
    if low is None and high is None:
        return "a number"
    return f">= {_text(low)}" if low is not None else f"<= {_text(high)}"


def number_problem(value, low=None, high=None, *, above=None, integer=False):
    """Why ``value`` is not a finite number (a whole one when ``integer``) within ``[low, high]``
    (and ``> above``), or None. The message starts lower-case, to follow a name."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return f"must be {'a whole number' if integer else 'a number'}, got {value!r}"
    if not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    if integer and value != int(value):
        return f"must be a whole number, got {value!r}"
    if (low is not None and value < low) or (high is not None and value > high) or \
            (above is not None and value <= above):
        return f"must be {range_text(low, high, above)}, got {_text(int(value) if integer else float(value))}"
    return None


def check_number(name, value, low=None, high=None, *, above=None, integer=False, allow_none=False):
    """``value`` (an ``int`` when ``integer``), or ``ArgumentError`` naming ``name`` and the range."""
    from ..errors import ArgumentError

    if value is None and allow_none:
        return None
    problem = number_problem(value, low, high, above=above, integer=integer)
    if problem:
        raise ArgumentError(f"{name} {problem}")
    return int(value) if integer else float(value)


def check_choice(name, value, choices):
    """``value`` if it is one of ``choices``, else ``ArgumentError`` listing them."""
    from ..errors import ArgumentError

    if not isinstance(value, str) or value not in choices:
        raise ArgumentError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value
