"""Money: a price table, a budget that stops new calls in time, and dry-run estimates.

Prices are US dollars per million tokens, per model id; a dated id (``gpt-4o-mini-2024-07-18``)
is priced by its longest listed prefix. The experiment's ``prices`` extend and override the
built-in table. The simulated model and replayed answers are free; a replay's fallback is not.

The budget is enforced before each call: the call is admitted only if what is spent, plus
what calls in flight may still cost, plus this call's estimate stays within the budget. A
call's estimate is its prompt (counted as ``estimate_prompt_tokens`` does) at the input price
plus ``max_tokens`` at the output price when the experiment sets it, else the longest reply
seen so far (at least 512 tokens): without ``max_tokens`` a reply's length cannot be bounded,
so the budget is then a close guard rather than a guarantee.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from societies.backends.base import (
    AnyBackend,
    CallRefusedError,
    GenerateRequest,
    GenerateResult,
    Usage,
    create_backend,
    estimate_prompt_tokens,
)
from societies.backends.simulated import GroundTruth, SimulatedBackend, ask
from societies.config.models import ModelSpec, Price
from societies.errors import ConfigError
from societies.plan.plan import Plan
from societies.scheduler.estimate import Estimate, estimate_plan

log = logging.getLogger(__name__)

#: Built-in prices (USD per million tokens), from the providers' published price lists.
DEFAULT_PRICES: dict[str, Price] = {
    name: Price(
        input=p.input,
        output=p.output,
        cached=p.cached,
        batch_input=p.input / 2,
        batch_output=p.output / 2,  # the Batch API: 50% off
    )
    for name, p in {
        "gpt-3.5-turbo-1106": Price(input=1.00, output=2.00),
        "gpt-3.5-turbo-0125": Price(input=0.50, output=1.50),
        "gpt-3.5-turbo": Price(input=0.50, output=1.50),
        "gpt-4o-mini": Price(input=0.15, output=0.60, cached=0.075),
        "gpt-4o": Price(input=2.50, output=10.00, cached=1.25),
        "gpt-4.1-nano": Price(input=0.10, output=0.40, cached=0.025),
        "gpt-4.1-mini": Price(input=0.40, output=1.60, cached=0.10),
        "gpt-4.1": Price(input=2.00, output=8.00, cached=0.50),
    }.items()
}
FREE_BACKENDS = frozenset({"sim"})
MIN_REPLY_ESTIMATE = 512


def price_table(extra: Mapping[str, Price]) -> dict[str, Price]:
    return {**DEFAULT_PRICES, **extra}


def find_price(table: Mapping[str, Price], model: str) -> Price | None:
    if model in table:
        return table[model]
    prefixes = [name for name in table if model.startswith(name)]
    return table[max(prefixes, key=len)] if prefixes else None


def cost_of(price: Price, usage: Usage, *, batch: bool = False) -> float:
    """Dollars of one call's usage; ``batch``: at the Batch API's prices (cached input, when
    the provider reports it, at the cached rate with the same discount)."""
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    input_price, output_price = price.input, price.output
    cached_price = price.input if price.cached is None else price.cached
    if batch:
        if price.batch_input is not None:
            scale = price.batch_input / price.input if price.input else 1.0
            input_price, cached_price = price.batch_input, cached_price * scale
        if price.batch_output is not None:
            output_price = price.batch_output
    return (
        (usage.prompt_tokens - cached) * input_price
        + cached * cached_price
        + usage.completion_tokens * output_price
    ) / 1e6


def paid_specs(plan: Plan) -> list[ModelSpec]:
    """The distinct model specs of the plan that cost money (a replay's fallback included)."""
    out: dict[str, ModelSpec] = {}
    for society in plan.societies:
        for agent in society.agents:
            spec = agent.model
            if spec.backend == "replay":
                fallback = spec.options.get("fallback")
                if not fallback:
                    continue
                spec = ModelSpec.model_validate(fallback)
            if spec.backend not in FREE_BACKENDS:
                out[f"{spec.backend}:{spec.name}"] = spec
    return list(out.values())


def check_prices(plan: Plan, table: Mapping[str, Price]) -> None:
    missing = sorted({s.name for s in paid_specs(plan) if find_price(table, s.name) is None})
    if missing:
        raise ConfigError(
            f"--budget: no price for model {', '.join(missing)}; add it under `prices:` in "
            f"{plan.source} (USD per million input / output / cached tokens)"
        )


@dataclass
class CostMeter:
    """What the run's calls cost so far, and the budget gate."""

    table: Mapping[str, Price]
    budget: float | None = None
    spent: float = 0.0
    reserved: float = 0.0
    longest_reply: int = MIN_REPLY_ESTIMATE
    calls: int = 0
    unpriced: Counter[str] = field(default_factory=Counter)
    #: Calls go through a Batch API (scheduler/batch.py): priced at its rates.
    batch: bool = False

    def estimate(self, request: GenerateRequest) -> float:
        price = find_price(self.table, request.model)
        if price is None:
            return 0.0
        max_tokens = request.params.get("max_tokens") or request.params.get("max_completion_tokens")
        reply = int(max_tokens) if max_tokens else self.longest_reply
        usage = Usage(estimate_prompt_tokens(request.messages), reply)
        return cost_of(price, usage, batch=self.batch)

    def admit(self, estimate: float) -> None:
        if self.budget is not None and self.spent + self.reserved + estimate > self.budget:
            log.info(
                "budget: refusing a call estimated at $%.4f ($%.4f spent, $%.4f in flight)",
                estimate, self.spent, self.reserved,
            )  # fmt: skip
            raise CallRefusedError(
                f"budget of ${self.budget:.2f} reached (${self.spent:.4f} spent; the next "
                f"call may cost ${estimate:.4f})"
            )
        self.reserved += estimate

    def settle(self, estimate: float, model: str, usage: Usage | None) -> None:
        self.reserved -= estimate
        if usage is None:
            return
        self.calls += 1
        self.longest_reply = max(self.longest_reply, usage.completion_tokens)
        price = find_price(self.table, model)
        if price is None:
            self.unpriced[model] += 1
            return
        self.spent += cost_of(price, usage, batch=self.batch)


class MeteredBackend(SimulatedBackend[Any]):
    """Wraps a paid backend: admits each call against the budget and adds up its cost (and
    passes the ground truth on, should the paid backend wrap a simulated model)."""

    name = "metered"

    def __init__(self, inner: AnyBackend, meter: CostMeter) -> None:
        # Not ModelBackend.__init__: the options belong to the inner backend.
        self.spec = inner.spec
        self.options = inner.options
        self.inner = inner
        self.meter = meter

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        return await self._metered(request, None)

    async def simulate(self, request: GenerateRequest, truth: GroundTruth) -> GenerateResult:
        return await self._metered(request, truth)

    async def _metered(self, request: GenerateRequest, truth: GroundTruth | None) -> GenerateResult:
        estimate = self.meter.estimate(request)
        self.meter.admit(estimate)
        result: GenerateResult | None = None
        try:
            result = await ask(self.inner, request, truth)
            return result
        finally:
            self.meter.settle(estimate, request.model, None if result is None else result.usage)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def max_concurrency(self) -> int | None:
        return self.inner.max_concurrency()


def metered_factory(
    meter: CostMeter, create: Callable[[ModelSpec], AnyBackend] = create_backend
) -> Callable[[ModelSpec], AnyBackend]:
    """A backend factory for the runner that meters every paid backend (made by ``create``)."""
    from societies.backends.replay import ReplayBackend

    def make(spec: ModelSpec) -> AnyBackend:
        backend = create(spec)
        if isinstance(backend, ReplayBackend):
            if backend.fallback is not None:
                backend.fallback = MeteredBackend(backend.fallback, meter)
            return backend
        if spec.backend in FREE_BACKENDS:
            return backend
        return MeteredBackend(backend, meter)

    return make


# -- dry run ----------------------------------------------------------------------------------
@dataclass
class DryRun:
    calls: int
    paid_calls: int
    reused: int
    prompt_tokens: int
    completion_tokens: int
    reply_tokens: int
    cost: float | None
    by_model: dict[str, tuple[int, int, int]]
    unpriced: list[str]
    size: Estimate = field(default_factory=Estimate)
    #: The same calls through a Batch API (at its prices), and the levels they form: one
    #: batch each when a level fits the provider's limits (scheduler/batch.py).
    batch_cost: float | None = None
    levels: int = 0


def estimate_run(plan: Plan, table: Mapping[str, Price], reply_tokens: int = 250) -> DryRun:
    """Price the plan's computed size (``societies.scheduler.estimate``): nothing is run."""
    est = estimate_plan(plan, reply_tokens)
    by_model = est.by_model
    paid = {s.name for s in paid_specs(plan)}
    cost: float | None = 0.0
    batch_cost: float | None = 0.0
    unpriced = []
    for model, (_, p, c) in by_model.items():
        if model not in paid:
            continue
        price = find_price(table, model)
        if price is None:
            unpriced.append(model)
            cost = batch_cost = None
        elif cost is not None and batch_cost is not None:
            cost += cost_of(price, Usage(p, c))
            batch_cost += cost_of(price, Usage(p, c), batch=True)
    depth = max((len(s.node_codes) for ss in plan.strategies.values() for s in ss), default=1)
    return DryRun(
        calls=est.calls,
        paid_calls=sum(n for model, (n, _, _) in by_model.items() if model in paid),
        reused=est.reused,
        prompt_tokens=sum(p for _, p, _ in by_model.values()),
        completion_tokens=sum(c for _, _, c in by_model.values()),
        reply_tokens=reply_tokens,
        cost=cost,
        by_model=by_model,
        unpriced=sorted(unpriced),
        size=est,
        batch_cost=batch_cost,
        levels=int(plan.prompts.persona_call) + depth,
    )
