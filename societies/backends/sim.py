"""The built-in simulated model: a deterministic society member that needs no key.

It plays the part the study's agents play: it knows the case's ground truth (handed over by the
scheduler through the simulated models' own hook, ``SimulatedBackend.simulate``), answers
correctly with a per-task probability (lower on the backward half of a reversal probe, higher
after a pause) or with its private briefing's answer when it has one, conforms to the other
agents' majority in a debate with a probability that depends on its trait, and on reflection
mostly keeps its answer and sometimes corrects it. Every draw comes from a random generator
seeded by the call's position in the experiment, so results do not depend on the order calls
complete.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from random import Random
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from societies.backends.base import (
    ContextExceededError,
    GenerateRequest,
    GenerateResult,
    Usage,
    estimate_prompt_tokens,
    estimate_tokens,
    register_backend,
)
from societies.backends.simulated import GroundTruth, SimulatedBackend, simulated_task
from societies.society.patterns import split_filler

DEFAULT_ACCURACY = {"mmlu": 0.6, "math": 0.45, "chess": 0.4}


#: A probability: every sim option that is one is bounded to [0, 1].
Probability = Annotated[float, Field(ge=0, le=1)]


class SimOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    accuracy: Probability | dict[str, Probability] = Field(
        default_factory=lambda: dict(DEFAULT_ACCURACY),
        description="P(correct first answer), one value or per task name.",
    )
    default_accuracy: float = Field(0.55, ge=0, le=1)
    conformity: dict[str, Probability] = Field(
        default_factory=lambda: {"easy-going": 0.8, "overconfident": 0.25},
        description="Per trait: P(adopting the other agents' majority answer in a debate).",
    )
    default_conformity: float = Field(0.5, ge=0, le=1)
    conformity_peers: int | None = Field(
        2,
        ge=1,
        description="The number of unanimous peers at which `conformity` holds (the study's "
        "societies: 2 peers); k unanimous peers pull with 1 - (1 - conformity)^(k / this), so "
        "conformity grows with the size of a unanimous majority (Asch). null: no size effect.",
    )
    judge_insight: Probability = Field(
        0.3,
        description="P(a judge picks the right answer when some agent gave it); otherwise it "
        "picks the majority of the replies it reads.",
    )
    reflection_keep: float = Field(0.9, ge=0, le=1, description="P(keeping a correct answer).")
    reflection_fix: float = Field(0.3, ge=0, le=1, description="P(correcting a wrong answer).")
    unparsed_rate: float = Field(0.03, ge=0, le=1, description="P(a reply with no answer).")
    briefing_trust: float = Field(
        0.9, ge=0, le=1, description="P(a briefed agent's first answer is its briefing's)."
    )
    reversal_factor: float = Field(
        0.42,
        ge=0,
        le=1,
        description="A backward probe (case field direction: backward) is answered correctly, "
        "and fixed on reflection, at this factor times the usual rate (GPT-4 on celebrity "
        "parents: 33% / 79%).",
    )
    pause_gain: Probability = Field(
        0.2,
        description="The pause pattern: M pause tokens before an answer turn this share times "
        "M / (M + pause_half) of the answers that would be wrong (first answers, and fixes on "
        "reflection) right; 0 models a model not trained with pauses.",
    )
    pause_half: float = Field(
        8.0, gt=0, description="The M at which a pause gives half of pause_gain."
    )
    questionnaire_noise: float = Field(
        1.0,
        ge=0,
        description="Standard deviation (scale points) of a questionnaire rating around the one "
        "its trait implies: confidence from 1 - conformity, openness from conformity.",
    )
    edit_distortion: float = Field(
        0.0,
        ge=0,
        le=1,
        description="A briefed agent whose briefing supports no answer for the case (its "
        "answer template renders empty: an unedited fact beside an edited one) answers it "
        "correctly, and fixes it on reflection, at 1 - edit_distortion times the usual rate.",
    )
    context_window: int = Field(16385, ge=1, description="Prompt tokens above this overflow.")
    latency_ms: float = Field(0.0, ge=0, description="Simulated latency of every call.")
    seed: int = 0


@register_backend
class SimBackend(SimulatedBackend[SimOptions]):
    name = "sim"
    Options = SimOptions
    transport_options = frozenset({"latency_ms"})
    free = True

    async def simulate(self, request: GenerateRequest, truth: GroundTruth) -> GenerateResult:
        opts = self.options
        if opts.latency_ms:
            await asyncio.sleep(opts.latency_ms / 1000)
        prompt_tokens = estimate_prompt_tokens(request.messages)
        if prompt_tokens > opts.context_window:
            raise ContextExceededError(
                f"{prompt_tokens} prompt tokens exceed the context window of {opts.context_window}"
            )
        if truth.step == "persona":
            text = "ok"
        elif truth.step == "judge":
            text = self._judge(truth)
        elif truth.step == "questionnaire":
            text = self._ratings(truth)
        else:
            text = self._answer(request, truth)
        return GenerateResult(
            text=text,
            usage=Usage(prompt_tokens, estimate_tokens(text)),
            model=f"sim:{self.spec.name}",
        )

    def _rng(self, truth: GroundTruth, salt: str = "") -> Random:
        digest = hashlib.blake2b(
            f"{self.options.seed}|{truth.seed}|{truth.position}{salt}".encode(), digest_size=8
        ).digest()
        return Random(int.from_bytes(digest, "big"))

    def _answer(self, request: GenerateRequest, truth: GroundTruth) -> str:
        opts = self.options
        rng = self._rng(truth)
        task, case = truth.task, truth.case
        sim = simulated_task(task)
        if rng.random() < opts.unparsed_rate:
            return sim.sim_reply(case, None, rng)
        previous = _last_answer(request, truth)
        if truth.round == 0 or previous is None:
            # The briefing's draw has a generator of its own: every other draw is the one the
            # agent makes without a briefing, so briefed and unbriefed runs differ only where
            # the briefing is followed (a paired comparison).
            briefed = truth.briefed_answer
            if briefed and self._rng(truth, "|briefing").random() < opts.briefing_trust:
                return sim.sim_reply(case, briefed, rng)
            accuracy = self._paused(request, self._accuracy(task.name) * self._recall(truth))
            answer = sim.sim_answer(case, rng.random() < accuracy, rng)
        else:
            answer = previous
            parsed = (task.parse_case(r, case) for r in truth.peer_replies)
            peers = [a for a in parsed if a is not None]
            trait = truth.agent.trait.name
            conform = opts.conformity.get(trait, opts.default_conformity)
            if peers and len(set(peers)) == 1 and opts.conformity_peers is not None:
                # Each peer read pulls on its own when those that answer agree: the trait's
                # conformity at the study's number of peers, more with a larger unanimous
                # majority, less with fewer.
                read = len(truth.peer_replies)
                conform = 1 - (1 - conform) ** (read / opts.conformity_peers)
            if peers and rng.random() < conform:
                counts = Counter(peers).most_common()
                top = [a for a, n in counts if n == counts[0][1]]
                answer = rng.choice(sorted(top))
            else:
                correct = task.score(previous, case)
                if correct and rng.random() >= opts.reflection_keep:
                    answer = sim.sim_answer(case, False, rng)
                elif not correct and rng.random() < self._paused(
                    request, opts.reflection_fix * self._recall(truth)
                ):
                    answer = sim.sim_answer(case, True, rng)
        return sim.sim_reply(case, answer, rng)

    def _judge(self, truth: GroundTruth) -> str:
        """A judge reads the replies (``peer_replies``): with probability ``judge_insight`` it
        picks a right answer some agent gave, otherwise the replies' majority (a tie drawn)."""
        rng = self._rng(truth)
        task, case = truth.task, truth.case
        sim = simulated_task(task)
        if rng.random() < self.options.unparsed_rate:
            return sim.sim_reply(case, None, rng)
        parsed = (task.parse_case(r, case) for r in truth.peer_replies)
        answers = [a for a in parsed if a is not None]
        if not answers:
            return sim.sim_reply(case, None, rng)
        right = sorted({a for a in answers if task.score(a, case)})
        if right and rng.random() < self.options.judge_insight:
            return sim.sim_reply(case, right[0], rng)
        counts = Counter(answers).most_common()
        top = [a for a, n in counts if n == counts[0][1]]
        return sim.sim_reply(case, rng.choice(sorted(top)), rng)

    def _ratings(self, truth: GroundTruth) -> str:
        """A questionnaire reply: each item rated where the agent's trait puts it (an agent
        that rarely conforms is confident and hard to persuade), with Gaussian noise, in one
        of the forms real models use; an item left unrated at ``unparsed_rate``."""
        opts = self.options
        rng = self._rng(truth, "|questionnaire")
        conform = opts.conformity.get(truth.agent.trait.name, opts.default_conformity)
        lines = []
        for n, item in enumerate(truth.questionnaire, 1):
            if rng.random() < opts.unparsed_rate:
                lines.append(f"{n}: that depends on the question.")
                continue
            latent = {"confidence": 1 - conform, "openness": conform}.get(item.measures or "", 0.5)
            mean = item.lo + latent * (item.hi - item.lo)
            value = min(max(round(rng.gauss(mean, opts.questionnaire_noise)), item.lo), item.hi)
            form = rng.choice(("{n}: {v}", "{n}. {v}/{hi}", "{n}. I'd say {v} out of {hi}."))
            lines.append(form.format(n=n, v=value, hi=item.hi))
        return "\n".join(lines)

    def _recall(self, truth: GroundTruth) -> float:
        """The reversal asymmetry: a fact asked backward is recalled (first, or on reflection)
        at ``reversal_factor`` times the usual rate; an edit's distortion: a fact the agent's
        briefing makes no claim on (its answer renders empty) at ``1 - edit_distortion``."""
        backward = truth.case.fields.get("direction") == "backward"
        factor = self.options.reversal_factor if backward else 1.0
        if truth.briefed_answer == "":
            factor *= 1 - self.options.edit_distortion
        return factor

    def _paused(self, request: GenerateRequest, p: float) -> float:
        """P(right) after the turn's pause: the model reads M where a real one would, from
        the filler at the end of its request (``society.patterns.Pause``), and a pause turns
        ``pause_gain * M / (M + pause_half)`` of the wrong answers right. Without a pause p
        is returned unchanged, so every draw is the one an unpaused agent makes."""
        _, tokens = split_filler(request.messages[-1]["content"]) if request.messages else ("", 0)
        if not tokens:
            return p
        opts = self.options
        return p + (1 - p) * opts.pause_gain * tokens / (tokens + opts.pause_half)

    def _accuracy(self, task_name: str) -> float:
        acc = self.options.accuracy
        if isinstance(acc, float | int):
            return float(acc)
        return float(acc.get(task_name, self.options.default_accuracy))


def _last_answer(request: GenerateRequest, truth: GroundTruth) -> str | None:
    """The agent's own latest answer, read from its conversation."""
    for message in reversed(request.messages):
        if message["role"] == "assistant":
            return truth.task.parse_case(message["content"], truth.case)
    return None
