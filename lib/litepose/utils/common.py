"""Helpers with no better home; each exists exactly once in the package."""


def rng_state_to_lists(state):
    """A ``random.Random`` state (``getstate()``) as plain lists, ``[version, [625 ints], gauss]``:
    what JSON and ``torch.load(weights_only=True)`` give back as they were stored."""
    version, internal, gauss = state
    return [version, list(internal), gauss]


def rng_state_from_lists(state):
    """The state ``random.Random.setstate`` takes, from ``rng_state_to_lists``'s form or a stored
    copy of it (lists, or tuples: what ``getstate()`` gave)."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def make_divisible(value, divisor=8, min_value=None):
    """Round ``value`` to the nearest multiple of ``divisor``, never below ``min_value``
    (default ``divisor``) and never more than 10 % below ``value``.

    This is the MobileNetV2 rule the release uses for every width in its search space.
    """
    if min_value is None:
        min_value = divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded
