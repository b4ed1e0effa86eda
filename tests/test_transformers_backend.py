"""The transformers backend with a tiny randomly initialised model built here (no download).

Skipped when torch or transformers are absent: they are the optional ``local`` extra, not
test dependencies, so that CI stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from societies.plan.plan import Overrides
from societies.plan.resolve import load_plan
from societies.scheduler.session import run_experiment
from tests.backend_helpers import DATA, answers, calls, write_experiment

torch: Any = pytest.importorskip("torch", reason="torch is not installed (societies[local])")
transformers: Any = pytest.importorskip(
    "transformers", reason="transformers is not installed (societies[local])"
)

TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tokenizers: Any = pytest.importorskip("tokenizers")

    folder = tmp_path_factory.mktemp("tiny-chat-model")
    specials = ["<pad>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        [DATA.read_text(encoding="utf-8")] * 2, vocab_size=400, special_tokens=specials
    )
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, eos_token="<|end|>", pad_token="<pad>"
    )
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=len(tokenizer), n_positions=2048, n_embd=32, n_layer=1, n_head=2,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def experiment_for(folder: Path, model: Path, **options: Any) -> Path:
    spec = {
        "backend": "transformers",
        "name": str(model),
        "params": {"max_tokens": 6},
        "options": {"device": "cpu", "batch_wait_ms": 20, **options},
    }
    return write_experiment(folder, cases=2, rounds=1, model=spec)


async def run(experiment: Path, out: Path) -> Any:
    return await run_experiment(load_plan(experiment, Overrides(out=out)))


async def test_a_tiny_model_answers_every_call_in_batches(tmp_path: Path, tiny_model: Path) -> None:
    experiment = experiment_for(tmp_path, tiny_model)
    summary = await run(experiment, tmp_path / "a")
    assert summary.errors == 0 and summary.made == 2 * 3 * (1 + 1 + 2)
    rows = calls(tmp_path / "a")
    assert all(r["outcome"] == "ok" for r in rows)
    assert all(r["prompt_tokens"] > 0 and 0 < r["completion_tokens"] <= 6 for r in rows)
    # greedy decoding: the same run again gives the same replies
    await run(experiment, tmp_path / "b")
    assert answers(tmp_path / "a") == answers(tmp_path / "b")


async def test_batches_are_formed(tiny_model: Path) -> None:
    import asyncio

    from societies.backends.base import GenerateRequest, create_backend
    from societies.config.models import ModelSpec

    backend: Any = create_backend(
        ModelSpec(backend="transformers", name=str(tiny_model), options={"device": "cpu"})
    )
    sizes: list[int] = []
    original = backend._generate_batch

    def spy(requests: Any) -> Any:
        sizes.append(len(requests))
        return original(requests)

    backend._generate_batch = spy
    requests = [
        GenerateRequest([{"role": "user", "content": f"question {i}"}], "tiny", {"max_tokens": 3})
        for i in range(8)
    ]
    results = await asyncio.gather(*(backend.generate(r) for r in requests))
    await backend.aclose()
    assert len(results) == 8 and max(sizes) > 1 and sum(sizes) == 8


async def test_context_overflow_is_recorded(tmp_path: Path, tiny_model: Path) -> None:
    experiment = experiment_for(tmp_path, tiny_model, context_window=60)
    summary = await run(experiment, tmp_path / "a")
    assert summary.errors == 0 and summary.context_exceeded > 0
