"""Where the time goes (loadtest/stages.py): p50 and p99 read from a Prometheus histogram
as the upper bound of the first bucket that holds them, in ms, and the mean."""

from __future__ import annotations

from loadtest.stages import quantiles

HISTOGRAM = """\
# HELP rex_gateway_request_seconds Request to confirmed forward.
# TYPE rex_gateway_request_seconds histogram
rex_gateway_request_seconds_bucket{le="0.001"} 40.0
rex_gateway_request_seconds_bucket{le="0.005"} 90.0
rex_gateway_request_seconds_bucket{le="0.025"} 99.0
rex_gateway_request_seconds_bucket{le="0.1"} 100.0
rex_gateway_request_seconds_bucket{le="+Inf"} 100.0
rex_gateway_request_seconds_count 100.0
rex_gateway_request_seconds_sum 0.25
"""


def test_p50_and_p99_are_the_bounds_of_the_buckets_that_reach_them() -> None:
    assert quantiles(HISTOGRAM, "rex_gateway_request_seconds") == {
        "count": 100.0,
        "mean_ms": 2.5,
        "p50_ms": 5.0,
        "p99_ms": 25.0,
    }


def test_a_quantile_past_the_last_finite_bucket_is_infinite() -> None:
    slow = HISTOGRAM.replace('le="0.025"} 99.0', 'le="0.025"} 95.0').replace(
        'le="0.1"} 100.0', 'le="0.1"} 98.0'
    )
    assert quantiles(slow, "rex_gateway_request_seconds")["p99_ms"] == float("inf")


def test_a_histogram_with_no_observations_has_a_mean_of_0() -> None:
    empty = "\n".join(
        line.rsplit(" ", 1)[0] + " 0.0" for line in HISTOGRAM.splitlines() if line[0] != "#"
    )
    assert quantiles(empty, "rex_gateway_request_seconds")["mean_ms"] == 0.0
