"""A follow-up's subject: the closed ticket's, without what answering it put before it."""

from __future__ import annotations

import pytest

from services.intake.inbox import follow_up_subject


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: [#100172] USB-C dock", "USB-C dock"),
        ("RE: RE: Fwd: [#100172] USB-C dock", "USB-C dock"),
        ("AW: [#7] Drucker", "Drucker"),
        ("SV:[#7] Skrivare", "Skrivare"),
        ("RE[2]: [#7] Printer", "Printer"),
        ("[#100076] Re: [#100063] VPN", "VPN"),
        ("Re: Rebooting did not help", "Rebooting did not help"),
        ("Regarding my laptop", "Regarding my laptop"),  # "Re" of a word stays
        ("Re: [#7]", "Badge reader"),  # nothing after it: the closed ticket's own
        ("VPN [#7] drops", "VPN [#7] drops"),  # only before the subject
    ],
)
def test_a_follow_ups_subject_loses_the_answer_marks_before_it(subject, expected):
    assert follow_up_subject(subject, "Badge reader") == expected
