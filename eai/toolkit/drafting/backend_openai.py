"""The HTTP backend: an OpenAI-compatible server (vLLM, e.g. started by `eai serve`).

It speaks the completions endpoint with token-id prompts, so the server sees exactly the ids
the in-process backend would, and asks for token ids back (`return_token_ids`, vLLM >= 0.10.2)
rather than text, so nothing is lost to detokenisation. `skip_special_tokens: false` keeps every
token in the text too. Sampling knobs the server could take from the model's
generation_config (top_p, top_k, penalties) are sent explicitly as "off", so both backends
decode the same way; prompt i is sampled with seed + i like TransformersBackend.

`score` sends each prompt once with all its options appended (one request, several prompts)
and sums the options' prompt log-probs. Requests run concurrently, at most `concurrency` at a
time; connection errors, timeouts, 429 and 5xx are retried with exponential backoff and jitter,
other 4xx raise BackendError with the server's message. Results keep the input order.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import requests
from requests.adapters import HTTPAdapter

from eai.toolkit.drafting.backends import BackendError, Generation

_DETERMINISTIC = {"top_p": 1.0, "top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0,
                  "frequency_penalty": 0.0, "presence_penalty": 0.0}


def _message(resp: requests.Response) -> str:
    try:
        body = resp.json()
        err = body.get("error", body) if isinstance(body, dict) else body
        return str(err.get("message", err) if isinstance(err, dict) else err)
    except ValueError:
        return resp.text.strip()[:500] or resp.reason


class OpenAIBackend:
    """`Backend` over an OpenAI-compatible server (eai.toolkit.drafting.backends).

    base_url: e.g. http://127.0.0.1:8000/v1 (what `eai serve` prints). model: the served name
    (default: the only one /models lists). api_key: else $OPENAI_API_KEY, else none."""

    name = "openai"

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None,
                 concurrency: int = 8, timeout: float = 120, max_retries: int = 5,
                 backoff_s: float = 0.5):
        if concurrency < 1:
            raise BackendError(f"concurrency {concurrency}: must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.concurrency, self.timeout = concurrency, timeout
        self.max_retries, self.backoff_s = max_retries, backoff_s
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_maxsize=concurrency)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if key:
            self._session.headers["Authorization"] = f"Bearer {key}"
        self.model = model or self._discover_model()

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIBackend({self.base_url!r}, model={self.model!r})"

    # -- HTTP -------------------------------------------------------------------------------
    def _request(self, method: str, path: str, payload: dict | None = None) -> Any:
        url = f"{self.base_url}{path}"
        last = ""
        for attempt in range(self.max_retries + 1):
            wait = None
            try:
                resp = self._session.request(method, url, json=payload,
                                             timeout=(min(10.0, self.timeout), self.timeout))
            except (requests.ConnectionError, requests.Timeout) as e:
                last = f"{type(e).__name__}: {e}"
            else:
                if resp.status_code < 400:
                    try:
                        return resp.json()
                    except ValueError:
                        raise BackendError(f"{url}: the answer is not JSON: "
                                           f"{resp.text[:200]!r}") from None
                last = f"HTTP {resp.status_code}: {_message(resp)}"
                if resp.status_code != 429 and resp.status_code < 500:
                    raise BackendError(f"{url}: {last}")
                retry_after = resp.headers.get("Retry-After", "")
                wait = min(float(retry_after), 60.0) if retry_after.isdigit() else None
            if attempt < self.max_retries:
                time.sleep(wait if wait is not None else
                           min(30.0, self.backoff_s * 2 ** attempt) * (0.5 + random.random()))
        raise BackendError(f"{url}: still failing after {self.max_retries} retries ({last}); "
                           f"is the server running (`eai serve MODEL_DIR`)?")

    def _discover_model(self) -> str:
        ids = [m.get("id") for m in self._request("GET", "/models").get("data", [])]
        if len(ids) != 1:
            raise BackendError(f"{self.base_url}/models lists {ids or 'no models'}; pass the "
                               f"model name to use")
        return ids[0]

    def _map(self, fn: Callable[[int, Any], Any], items: Sequence[Any]) -> list[Any]:
        """fn(i, item) for every item, at most `concurrency` at once, results in input order."""
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(i, x) for i, x in enumerate(items)]
        with ThreadPoolExecutor(min(self.concurrency, len(items))) as pool:
            futures = [pool.submit(fn, i, x) for i, x in enumerate(items)]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise

    # -- Backend ----------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                 stop_token_ids: Sequence[int], temperature: float = 0.0,
                 seed: int = 0) -> list[Generation]:
        stops = [int(t) for t in stop_token_ids]

        def one(i: int, prompt: Sequence[int]) -> Generation:
            ids = [int(t) for t in prompt]
            if not ids:
                raise BackendError(f"prompt {i} is empty")
            body = self._request("POST", "/completions", {
                "model": self.model, "prompt": ids, "max_tokens": max_new_tokens,
                "temperature": temperature, "seed": seed + i, "stop_token_ids": stops,
                "skip_special_tokens": False, "return_token_ids": True, **_DETERMINISTIC})
            choice = (body.get("choices") or [{}])[0]
            self._same_prompt(i, ids, choice)
            if choice.get("token_ids") is None:
                raise BackendError(f"{self.base_url}: the server returned no token ids "
                                   f"(`return_token_ids` needs vLLM 0.10.2 or newer); "
                                   f"upgrade the server")
            reason = choice.get("finish_reason")
            if reason not in ("stop", "length"):
                raise BackendError(f"prompt {i}: the server ended with {reason!r}")
            return Generation(token_ids=[int(t) for t in choice["token_ids"]],
                              finish_reason=reason,
                              extra={"prompt_tokens": len(ids),
                                     "stop_reason": choice.get("stop_reason")})

        return self._map(one, list(prompts))

    def _same_prompt(self, i: int, ids: list[int], choice: dict) -> None:
        """The server must not have changed the prompt (e.g. added a BOS)."""
        seen = choice.get("prompt_token_ids")
        if seen is not None and list(seen) != ids:
            raise BackendError(f"prompt {i}: the server changed the prompt ids "
                               f"({len(ids)} sent, {len(seen)} used)")

    def score(self, prompts: Sequence[Sequence[int]],
              options: Sequence[Sequence[int]]) -> np.ndarray:
        opts = [[int(t) for t in o] for o in options]
        if not opts or any(not o for o in opts):
            raise BackendError("score needs at least one option and no empty option")

        def one(i: int, prompt: Sequence[int]) -> list[float]:
            ids = [int(t) for t in prompt]
            if not ids:
                raise BackendError(f"prompt {i} is empty")
            body = self._request("POST", "/completions", {
                "model": self.model, "prompt": [ids + o for o in opts], "max_tokens": 1,
                "temperature": 0.0, "prompt_logprobs": 0, **_DETERMINISTIC})
            choices = sorted(body.get("choices") or [], key=lambda c: c.get("index", 0))
            if len(choices) != len(opts):
                raise BackendError(f"prompt {i}: {len(choices)} answers for {len(opts)} options")
            return [self._option_logprob(i, c.get("prompt_logprobs"), ids + o, len(o))
                    for c, o in zip(choices, opts)]

        rows = self._map(one, list(prompts))
        return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(opts))

    @staticmethod
    def _option_logprob(i: int, plp: list | None, ids: list[int], n: int) -> float:
        if not plp or len(plp) != len(ids):
            raise BackendError(f"prompt {i}: the server returned no prompt log-probs for all "
                               f"{len(ids)} tokens (it needs `prompt_logprobs` support)")
        total = 0.0
        for pos in range(len(ids) - n, len(ids)):
            entry = plp[pos] or {}
            hit = entry.get(str(ids[pos])) or entry.get(ids[pos])
            if hit is None:
                raise BackendError(f"prompt {i}: no log-prob for token {ids[pos]} at {pos}")
            total += float(hit["logprob"] if isinstance(hit, dict) else hit)
        return total

    def close(self) -> None:
        self._session.close()
