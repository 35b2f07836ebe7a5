"""The order client's fast encoding of a batch of orders is byte for byte what the general path
(``json.dumps`` then URL-encoding) makes: the signature covers those bytes."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st
from marketmaker import Side
from marketmaker.exchanges import binance
from marketmaker.exchanges.binance import NewOrder


@settings(max_examples=200, deadline=None)
@given(
    orders=st.lists(
        st.tuples(
            st.text(alphabet=st.characters(codec="ascii"), min_size=1, max_size=36),
            st.sampled_from([Side.BUY, Side.SELL]),
            st.floats(min_value=0.01, max_value=1e6),
            st.floats(min_value=0.001, max_value=1e3),
            st.booleans(),
            st.booleans(),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_the_batch_orders_value_is_the_encoded_json_of_the_orders(orders: list[tuple]) -> None:
    chunk = [NewOrder(c, side, p, q, post_only=post, reduce_only=reduce) for c, side, p, q, post, reduce in orders]
    batch = [dict(binance._order_params("BTCUSDT", order, None)) for order in chunk]
    expected = urlencode([("batchOrders", json.dumps(batch, separators=(",", ":")))])
    assert binance._query([("batchOrders", binance._batch_orders_value("BTCUSDT", chunk, None))]) == expected
