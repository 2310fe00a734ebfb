"""Whom the portal's per-client limits count (pages.client_network): one client, or one home's IPv6 /64."""

from __future__ import annotations

import pytest
from flask import Flask

from services.portal.pages import client_network


@pytest.mark.parametrize(
    ("address", "counted"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),  # a server bound to [::]: each IPv4 client, not one ::/64 for all
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),  # the same home
        ("", ""),  # a unix socket: no address (the sign-in cap counts none)
    ],
)
def test_client_network(address, counted):
    with Flask(__name__).test_request_context(environ_base={"REMOTE_ADDR": address}):
        assert client_network() == counted
