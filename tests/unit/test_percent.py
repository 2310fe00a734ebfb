"""A share in percent never says 100 while some missed, nor 0 while some made it."""

from __future__ import annotations

from shared.percent import share


def test_a_share_rounds_to_one_decimal_but_never_to_all_or_nothing_that_is_not():
    assert share(1999, 2000) == 99.9  # round() said 100.0: read as no breach at all
    assert share(19999, 20000) == 99.9
    assert share(1, 2002) == 0.1  # round() said 0.0
    assert share(2000, 2000) == 100.0 and share(0, 2000) == 0.0
    assert share(2, 3) == 66.7 and share(1, 3) == 33.3
    assert share(0, 0) is None
