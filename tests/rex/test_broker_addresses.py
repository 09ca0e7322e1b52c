"""Broker addresses (rex/broker_addresses.py): one URL or a cluster's nodes, as a list.

Before, a list in REX_BROKER_URL made every service exit with pika's "Port could not be
cast to integer"; now it is read as the nodes of one cluster, and a list that cannot be one
(different users or vhosts, a bad port) is refused with what is wrong."""

from __future__ import annotations

import pytest

from rex.broker_addresses import (
    MAX_ADDRESSES,
    BrokerAddressError,
    parse_addresses,
    split_urls,
)
from rex.environment import REX_BROKER_URL
from rex.errors import ConfigError

A = "amqp://alpha:pw@node1:5672/rex"
B = "amqp://alpha:pw@node2:5682/rex"
C = "amqp://alpha:pw@node3:5692/rex"


@pytest.mark.parametrize(
    "text",
    [f"{A},{B},{C}", f"{A}, {B}, {C}", f"{A} {B}\n{C}", f" {A} ,\t{B} , {C} ", f"{A},{B},{C},"],
)
def test_a_list_is_split_at_commas_or_white_space(text: str) -> None:
    assert split_urls(text) == (A, B, C)


def test_one_url_is_a_list_of_one() -> None:
    addresses = parse_addresses(A)
    assert addresses.urls == (A,)
    assert (addresses.vhost, addresses.username) == ("rex", "alpha")


def test_a_comma_in_a_password_is_percent_encoded_and_stays_in_its_url() -> None:
    url = "amqp://alpha:p%2Cw@node1:5672/rex"
    addresses = parse_addresses(f"{url}, {B}")
    assert addresses.urls == (url, B)
    assert addresses.parameters()[0].credentials.password == "p,w"


def test_the_nodes_are_tried_in_list_order_and_named_without_passwords() -> None:
    addresses = parse_addresses(f"{A}, {B}, {C}")
    assert [(p.host, p.port) for p in addresses.parameters()] == [
        ("node1", 5672),
        ("node2", 5682),
        ("node3", 5692),
    ]
    assert addresses.where(1) == "node2:5682/rex"
    assert addresses.where(3) == "node1:5672/rex"  # round the list
    assert "pw" not in addresses.describe()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no broker URL given"),
        (f"{A}, amqp://beta:pw@node2:5672/rex", "different vhosts or users"),
        (f"{A}, amqp://alpha:pw@node2:5672/other", "different vhosts or users"),
        ("amqp://alpha:pw@node1:56x2/rex", "broker URL"),
        ("http://alpha:pw@node1:5672/rex", "does not start with amqp://"),
        (", ".join([A] * (MAX_ADDRESSES + 1)), f"at most {MAX_ADDRESSES}"),
    ],
)
def test_a_list_that_cannot_be_one_cluster_is_refused_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(BrokerAddressError, match=says) as refused:
        parse_addresses(text)
    assert ":pw@" not in str(refused.value)  # no password in the message


def test_rex_broker_url_takes_a_list_and_refuses_a_mixed_one_without_its_passwords() -> None:
    assert REX_BROKER_URL.get({"REX_BROKER_URL": f"{A}, {B}"}) == f"{A}, {B}"
    with pytest.raises(ConfigError) as refused:
        REX_BROKER_URL.get({"REX_BROKER_URL": f"{A}, amqp://beta:secret@node2:5672/rex"})
    assert "REX_BROKER_URL" in str(refused.value) and "same user and vhost" in str(refused.value)
    assert "secret" not in str(refused.value) and ":pw@" not in str(refused.value)
