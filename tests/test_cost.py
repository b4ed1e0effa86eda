"""Prices, the budget gate and the dry-run estimate."""

from __future__ import annotations

from pathlib import Path

import pytest

from societies.backends.base import CallRefusedError, GenerateRequest, Usage
from societies.config.models import Price
from societies.cost import DEFAULT_PRICES, CostMeter, cost_of, estimate_run, find_price, price_table
from societies.errors import ConfigError
from societies.plan.resolve import load_plan
from tests.backend_helpers import write_experiment


def test_prices_by_model_and_dated_prefix() -> None:
    assert find_price(DEFAULT_PRICES, "gpt-4o-mini-2024-07-18") == DEFAULT_PRICES["gpt-4o-mini"]
    assert find_price(DEFAULT_PRICES, "gpt-4o-2024-08-06") == DEFAULT_PRICES["gpt-4o"]
    assert find_price(DEFAULT_PRICES, "llama-3-8b") is None
    table = price_table({"llama-3-8b": Price(input=0.1, output=0.2)})
    assert find_price(table, "llama-3-8b-instruct") == Price(input=0.1, output=0.2)


def test_cost_counts_cached_tokens_at_their_price() -> None:
    price = Price(input=2.0, output=8.0, cached=0.5)
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=500_000, cached_tokens=400_000)
    assert cost_of(price, usage) == pytest.approx(0.6 * 2 + 0.4 * 0.5 + 0.5 * 8)
    assert cost_of(Price(input=1, output=1), Usage(10, 0, 10)) == pytest.approx(10 / 1e6)


def test_the_budget_admits_calls_while_spent_plus_in_flight_fit() -> None:
    meter = CostMeter({"m": Price(input=1e6, output=1e6)}, budget=1000.0)
    request = GenerateRequest([{"role": "user", "content": "x" * 40}], "m", {"max_tokens": 100})
    estimate = meter.estimate(request)  # (3 + 3 + 10) prompt + 100 reply tokens at $1 each
    assert estimate == pytest.approx(116)
    for _ in range(8):
        meter.admit(estimate)
    with pytest.raises(CallRefusedError, match=r"budget of \$1000.00 reached"):
        meter.admit(estimate)
    meter.settle(estimate, "m", Usage(16, 10))
    assert meter.spent == pytest.approx(26)
    meter.admit(estimate)  # the settled call cost less than reserved: room again


def test_dry_run_counts_calls_and_tokens(tmp_path: Path) -> None:
    experiment = write_experiment(tmp_path, model={"backend": "openai", "name": "gpt-4o-mini"})
    plan = load_plan(experiment)
    dry = estimate_run(plan, DEFAULT_PRICES, reply_tokens=100)
    assert dry.calls == dry.paid_calls == 72 and dry.reused == 0
    # persona replies count 1 token, answers the assumed 100
    assert dry.completion_tokens == 9 + 63 * 100
    assert dry.cost == pytest.approx((dry.prompt_tokens * 0.15 + dry.completion_tokens * 0.6) / 1e6)


def test_a_price_in_the_experiment_file_is_validated(tmp_path: Path) -> None:
    experiment = write_experiment(tmp_path, extra={"prices": {"m": {"input": -1, "output": 1}}})
    with pytest.raises(ConfigError, match=r"prices.m.input"):
        load_plan(experiment)
