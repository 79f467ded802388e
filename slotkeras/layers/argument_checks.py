"""The argument checks of the custom layers: Keras-style errors that name the argument
and echo the value."""

import numbers


def check_positive_int(name, value, allow_none=False):
    """Returns `value` as an `int`, raising a Keras-style error unless positive."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, "
            f"expected a positive integer, got {value}."
        )
    return int(value)


def check_rate(name, value):
    """Returns `value` as a `float`, raising a Keras-style error unless in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, "
            f"expected a float in [0, 1), got {value}."
        )
    return float(value)
