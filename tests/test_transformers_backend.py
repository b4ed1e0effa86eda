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


def _spy_backend(model: Path) -> tuple[Any, list[dict[str, Any]]]:
    """A backend on the tiny model whose ``model.generate`` records what it is given."""
    from societies.backends.base import create_backend
    from societies.config.models import ModelSpec

    backend: Any = create_backend(
        ModelSpec(backend="transformers", name=str(model), options={"device": "cpu"})
    )
    seen: list[dict[str, Any]] = []
    original = backend.model.generate

    def spy(**kwargs: Any) -> Any:
        seen.append(kwargs)
        return original(**kwargs)

    backend.model.generate = spy
    return backend, seen


async def test_pause_tokens_follow_the_prompt_ids_sent_to_generate(tiny_model: Path) -> None:
    """The paper's inference-time delay: M copies of the <pause> id right after each prompt's
    token ids (left padding before), the token added to the tokenizer and one embedding row
    to the model; the pauses count as prompt tokens and are never generated."""
    import asyncio

    from societies.backends.base import GenerateRequest

    backend, seen = _spy_backend(tiny_model)
    tok = backend.tokenizer
    vocab = len(tok)
    assert "<pause>" not in tok.get_vocab()
    requests = [
        GenerateRequest([{"role": "user", "content": text}], "tiny",
                        {"max_tokens": 4, "pause_tokens": 5})
        for text in ("a short question", "a somewhat longer question about cells and genes")
    ]  # fmt: skip
    results = await asyncio.gather(*(backend.generate(r) for r in requests))
    await backend.aclose()
    pause_id = tok.convert_tokens_to_ids("<pause>")
    assert len(tok) == vocab + 1 and pause_id == vocab
    assert backend.model.get_input_embeddings().weight.shape[0] == vocab + 1
    sent = [(ids, mask) for call in seen
            for ids, mask in zip(call["input_ids"].tolist(), call["attention_mask"].tolist(),
                                 strict=True)]  # fmt: skip
    assert len(sent) == 2
    for request, result, (ids, mask) in zip(requests, results, sent, strict=True):
        text = tok.apply_chat_template(
            [dict(m) for m in request.messages], tokenize=False, add_generation_prompt=True
        )
        prompt = tok(text, add_special_tokens=False)["input_ids"]
        real = [i for i, m in zip(ids, mask, strict=True) if m]
        assert real == prompt + [pause_id] * 5
        assert ids[-5:] == [pause_id] * 5  # the pauses end every row: generation follows them
        assert result.usage.prompt_tokens == len(prompt) + 5
    assert all(call["suppress_tokens"] == [pause_id] for call in seen)


async def test_a_reply_without_pause_is_the_same_before_and_after_the_token_is_added(
    tiny_model: Path,
) -> None:
    from societies.backends.base import GenerateRequest

    backend, seen = _spy_backend(tiny_model)
    plain = GenerateRequest([{"role": "user", "content": "question"}], "tiny", {"max_tokens": 6})
    paused = GenerateRequest(
        [{"role": "user", "content": "question"}], "tiny", {"max_tokens": 6, "pause_tokens": 3}
    )
    before = await backend.generate(plain)
    await backend.generate(paused)
    after = await backend.generate(plain)
    await backend.aclose()
    assert before.text == after.text and before.usage == after.usage
    assert seen[0]["input_ids"].shape[1] + 3 == seen[1]["input_ids"].shape[1]


async def test_a_pause_sweep_sends_m_as_a_parameter_and_leaves_the_messages(
    tmp_path: Path, tiny_model: Path
) -> None:
    """Stored: M with the params (so in the request hash), the messages as without a pause."""
    import json

    from tests.backend_helpers import asked

    file = experiment_for(tmp_path, tiny_model)
    text = file.read_text().replace("easy_going: 1", "easy_going: 1\n  pause: [0, 3]")
    file.write_text(text)
    summary = await run(file, tmp_path / "a")
    assert summary.errors == 0 and summary.made == 2 * 2 * 3 * (1 + 1 + 2)
    rows = calls(tmp_path / "a")
    params: dict[str, set[str]] = {}
    for r in rows:
        params.setdefault(r["society"], set()).add(
            json.dumps(json.loads(r["params_json"]), sort_keys=True)
        )
    assert params == {"1eg-2oc-pause0": {'{"max_tokens": 6}'},
                      "1eg-2oc-pause3": {'{"max_tokens": 6, "pause_tokens": 3}'}}  # fmt: skip
    requests = asked(tmp_path / "a")
    hashes = {(r["society"], r["case_id"], r["node"], r["agent"], r["step"]): r["request_hash"]
              for r in rows}  # fmt: skip
    for (rep, case, society, node, agent, step), messages in requests.items():
        if society == "1eg-2oc-pause3" and node == "":
            twin = requests[(rep, case, "1eg-2oc-pause0", node, agent, step)]
            asked_only = [m for m in messages if m["role"] != "assistant"]  # replies differ
            assert asked_only == [m for m in twin if m["role"] != "assistant"]
            twin_hash = hashes[("1eg-2oc-pause0", case, node, agent, step)]
            assert hashes[(society, case, node, agent, step)] != twin_hash
