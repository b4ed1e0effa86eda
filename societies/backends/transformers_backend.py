"""The ``transformers`` backend: a Hugging Face chat model in-process (``societies[local]``).

The model name is a hub id or a local directory, loaded with ``AutoModelForCausalLM`` and its
tokenizer's chat template. Calls the scheduler runs concurrently are gathered into batches
(up to ``batch_size``, waiting at most ``batch_wait_ms`` for a batch to fill) and generated
together with left padding, in a worker thread so that the event loop keeps serving; calls
with different generation parameters never share a batch. With ``temperature`` 0 (the
default) decoding is greedy and replies are deterministic; with sampling, ``seed`` seeds each
batch, so replies depend on how calls were batched.

The pause pattern (``society.patterns.Pause``) reaches this backend as the generation
parameter ``pause_tokens`` (M): M copies of the ``<pause>`` token are appended after each
prompt's token ids, so generation starts after the last pause, as in the paper's inference.
A tokenizer without ``<pause>`` gets it as a special token on the first such request, with one
new embedding row (the mean of the others: deterministic, where a random initialisation would
depend on the process); an added token is untrained, so it is then never generated, which
also keeps replies without a pause the same as before it was added.

torch and transformers are imported only when the backend is created, so the rest of the
package (and its tests) never needs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from societies.backends.base import (
    CallFailedError,
    ContextExceededError,
    GenerateRequest,
    GenerateResult,
    ModelBackend,
    PermanentModelError,
    Usage,
    register_backend,
)
from societies.config.models import ModelSpec
from societies.society.patterns import PAUSE_PARAM, PAUSE_TOKEN

log = logging.getLogger(__name__)


class TransformersOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str = Field("auto", description="'auto' (cuda if available, else cpu), 'cpu', ...")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    batch_size: int = Field(8, ge=1)
    batch_wait_ms: float = Field(5.0, ge=0, description="Longest wait for a batch to fill.")
    max_new_tokens: int = Field(512, ge=1, description="Unless params.max_tokens is set.")
    context_window: int | None = Field(
        None, ge=1, description="Default: the model config's max_position_embeddings."
    )
    trust_remote_code: bool = False


@dataclass
class _Pending:
    request: GenerateRequest
    future: asyncio.Future[GenerateResult]


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise PermanentModelError(
            f"the transformers backend needs {name}: pip install 'societies[local]'"
        ) from None


@register_backend
class TransformersBackend(ModelBackend[TransformersOptions]):
    name = "transformers"
    Options = TransformersOptions
    transport_options = frozenset({"batch_wait_ms"})
    native_pause = True

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        opts = self.options
        self.torch = _import("torch")
        transformers = _import("transformers")
        device = opts.device
        if device == "auto":
            device = "cuda" if self.torch.cuda.is_available() else "cpu"
        dtype = "auto" if opts.dtype == "auto" else getattr(self.torch, opts.dtype)
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(
                spec.name, trust_remote_code=opts.trust_remote_code
            )
            self.model = transformers.AutoModelForCausalLM.from_pretrained(
                spec.name, dtype=dtype, trust_remote_code=opts.trust_remote_code
            ).to(device)
        except (OSError, ValueError) as exc:
            raise PermanentModelError(f"transformers: cannot load '{spec.name}': {exc}") from None
        self.model.eval()
        self.device = device
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if getattr(self.tokenizer, "chat_template", None) is None:
            raise PermanentModelError(f"transformers: '{spec.name}' has no chat template")
        self.window = opts.context_window or getattr(
            self.model.config, "max_position_embeddings", None
        )
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task[None] | None = None
        #: The pause token's id once a request asked for pauses; whether this backend added it.
        self._pause_id: int | None = None
        self._pause_added = False

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._serve(self._queue))
        future: asyncio.Future[GenerateResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(request, future))
        return await future

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = self._queue = None

    async def _serve(self, queue: asyncio.Queue[_Pending]) -> None:
        opts = self.options
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + opts.batch_wait_ms / 1000
            while len(batch) < opts.batch_size:
                remaining = deadline - loop.time()
                if remaining <= 0 and queue.empty():
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), max(remaining, 0)))
                except TimeoutError:
                    break
            groups: dict[str, list[_Pending]] = {}
            for item in batch:
                key = json.dumps(item.request.params, sort_keys=True, default=str)
                groups.setdefault(key, []).append(item)
            for items in groups.values():
                await self._run_group(items)

    async def _run_group(self, items: list[_Pending]) -> None:
        live = [i for i in items if not i.future.done()]
        try:
            results = await asyncio.to_thread(self._generate_batch, [i.request for i in live])
        except Exception as exc:  # a failed batch fails its calls, never the run
            log.warning("transformers: batch of %d failed: %s", len(live), exc)
            for item in live:
                if not item.future.done():
                    item.future.set_exception(CallFailedError(f"generation failed: {exc}"))
            return
        for item, result in zip(live, results, strict=True):
            if item.future.done():
                continue
            if isinstance(result, Exception):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)

    def _generate_batch(
        self, requests: Sequence[GenerateRequest]
    ) -> list[GenerateResult | Exception]:
        """Runs in a worker thread: template, check the context, generate, decode."""
        tok = self.tokenizer
        opts = self.options
        params = requests[0].params
        max_new = int(params.get("max_tokens") or opts.max_new_tokens)
        pause = int(params.get(PAUSE_PARAM) or 0)
        out: list[GenerateResult | Exception | None] = [None] * len(requests)
        prompts: list[str] = []
        index: list[int] = []
        for i, request in enumerate(requests):
            text = tok.apply_chat_template(
                [dict(m) for m in request.messages], tokenize=False, add_generation_prompt=True
            )
            length = len(tok(text, add_special_tokens=False)["input_ids"])
            if self.window is not None and length + pause + max_new > self.window:
                paused = f" + {pause} pause" if pause else ""
                out[i] = ContextExceededError(
                    f"{length} prompt tokens{paused} + {max_new} new exceed the context window "
                    f"of {self.window}"
                )
            else:
                prompts.append(text)
                index.append(i)
        if prompts:
            self._decode_into(out, prompts, index, params, max_new, pause)
        return [r if r is not None else CallFailedError("no result") for r in out]

    def _pause_token(self) -> int:
        """The id of ``<pause>``, added to the tokenizer (and a row to the embeddings) when
        the model lacks it. Runs in the worker thread, between batches."""
        if self._pause_id is not None:
            return self._pause_id
        tok, torch = self.tokenizer, self.torch
        if PAUSE_TOKEN not in tok.get_vocab():
            old = self.model.get_input_embeddings().weight.shape[0]
            tok.add_tokens([PAUSE_TOKEN], special_tokens=True)
            self.model.resize_token_embeddings(len(tok), mean_resizing=False)
            with torch.no_grad():
                for emb in (self.model.get_input_embeddings(), self.model.get_output_embeddings()):
                    if emb is not None and emb.weight.shape[0] > old:
                        emb.weight[old:] = emb.weight[:old].mean(dim=0)
            self._pause_added = True
            log.info("transformers: added %s to the tokenizer of %s", PAUSE_TOKEN, self.spec.name)
        self._pause_id = int(tok.convert_tokens_to_ids(PAUSE_TOKEN))
        return self._pause_id

    def _decode_into(
        self,
        out: list[GenerateResult | Exception | None],
        prompts: list[str],
        index: list[int],
        params: Any,
        max_new: int,
        pause: int,
    ) -> None:
        torch, tok = self.torch, self.tokenizer
        encoded = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        if pause:
            # Left padding: every row's prompt ends at the last column, so the pauses follow
            # each prompt directly.
            pause_id = self._pause_token()
            rows = encoded["input_ids"].shape[0]
            encoded["input_ids"] = torch.cat(
                [encoded["input_ids"], torch.full((rows, pause), pause_id, dtype=torch.long)], 1
            )
            encoded["attention_mask"] = torch.cat(
                [encoded["attention_mask"], torch.ones((rows, pause), dtype=torch.long)], 1
            )
        encoded = encoded.to(self.device)
        temperature = float(params.get("temperature", 0) or 0)
        kwargs: dict[str, Any] = {"max_new_tokens": max_new, "pad_token_id": tok.pad_token_id}
        if self._pause_added:
            kwargs["suppress_tokens"] = [self._pause_id]
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature)
            if "top_p" in params:
                kwargs["top_p"] = float(params["top_p"])
            if "seed" in params:
                torch.manual_seed(int(params["seed"]))
        else:
            kwargs["do_sample"] = False
        with torch.inference_mode():
            generated = self.model.generate(**encoded, **kwargs)
        width = encoded["input_ids"].shape[1]
        eos = tok.eos_token_id
        for row, i in enumerate(index):
            new_tokens = generated[row, width:].tolist()
            if eos is not None and eos in new_tokens:
                new_tokens = new_tokens[: new_tokens.index(eos)]
            text = tok.decode(new_tokens, skip_special_tokens=True)
            prompt_tokens = int(encoded["attention_mask"][row].sum())
            out[i] = GenerateResult(
                text, Usage(prompt_tokens, len(new_tokens)), model=self.spec.name
            )
