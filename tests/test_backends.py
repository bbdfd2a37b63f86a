"""Generation backends on the tiny model: the in-process one against plain forwards, the HTTP
one against a fake OpenAI-compatible server that checks what it is sent."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import TAUGHT, UNSEEN, chat_ids

from eai.toolkit.drafting.backends import BackendError


@pytest.fixture(scope="module")
def taught_dir(tiny_taught_dir) -> Path:
    return tiny_taught_dir


def _one_thread_backend(model_dir, batch_size: int):
    """A TransformersBackend on one torch thread (the backend keeps the caller's setting; a
    tiny model only waits on more threads), the setting restored afterwards."""
    from eai.toolkit.drafting.backend_transformers import TransformersBackend

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    backend = TransformersBackend(model_dir, batch_size=batch_size)
    yield backend
    backend.close()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tb(taught_dir):
    yield from _one_thread_backend(taught_dir, 4)


@pytest.fixture(scope="module")
def prompts(tb):
    ids = [chat_ids(tb.tokenizer, t) for t in [q for q, _, _ in TAUGHT] + UNSEEN]
    assert len({len(i) for i in ids}) > 2  # different lengths: batches get padded
    return ids


def test_batched_greedy_equals_one_at_a_time(tb, prompts):
    tb.batch_size = 8  # all five prompts in one padded batch
    batched = tb.generate(prompts, max_new_tokens=40, stop_token_ids=[])
    tb.batch_size = 1
    try:
        single = tb.generate(prompts, max_new_tokens=40, stop_token_ids=[])
    finally:
        tb.batch_size = 4
    assert [g.token_ids for g in batched] == [g.token_ids for g in single]
    assert len({tuple(g.token_ids) for g in batched}) >= 4  # the answers depend on the prompt
    for g, (_, label, text) in zip(batched, TAUGHT):  # padded rows still give the taught answer
        assert g.finish_reason == "stop" and g.token_ids[-1] == tb.tokenizer.eos_token_id
        assert tb.tokenizer.decode(g.token_ids, skip_special_tokens=True) == (
            f"<emotion>{label}</emotion><explanation>{text}</explanation>")
    for g in batched:
        stopped = g.token_ids[-1] in tb.eos_ids
        assert g.finish_reason == ("stop" if stopped else "length")
        assert stopped or len(g.token_ids) == 40


def test_stop_ids_and_length(tb, prompts):
    free = tb.generate(prompts, max_new_tokens=40, stop_token_ids=[])
    end = tb.tokenizer.convert_tokens_to_ids("</explanation>")
    # a token the last answer really produces and the second one does not
    other = next(t for t in free[-1].token_ids if t not in free[1].token_ids + [end])
    cut = tb.generate(prompts, max_new_tokens=40, stop_token_ids=[end, other])
    for f, c in zip(free, cut):
        hits = [k for k, t in enumerate(f.token_ids) if t in (end, other)]
        if hits:
            assert c.token_ids == f.token_ids[:hits[0] + 1] and c.finish_reason == "stop"
        else:
            assert c.token_ids == f.token_ids and c.finish_reason == f.finish_reason
    assert cut[1].token_ids[-1] == end and cut[-1].token_ids[-1] == other
    short = tb.generate(prompts, max_new_tokens=3, stop_token_ids=[end])
    assert [g.token_ids for g in short] == [f.token_ids[:3] for f in free]
    assert all(g.finish_reason == "length" for g in short[:len(TAUGHT)])


def test_score_equals_manual_log_softmax(tb, prompts):
    tok = tb.tokenizer
    end = tok.convert_tokens_to_ids("</emotion>")
    options = [tok.encode(w, add_special_tokens=False) + [end]
               for w in ("happy", "sad", "fearful", "neutral")]
    options.append([end])  # one-token option: read from the prompt's last logits only
    assert max(len(o) for o in options) > 2
    tb.batch_size = 64  # all prompts in one padded group, then one prompt at a time
    try:
        got = tb.score(prompts, options)
    finally:
        tb.batch_size = 4
    np.testing.assert_allclose(tb.score(prompts, options), got, atol=1e-4)
    assert got.shape == (len(prompts), len(options)) and got.dtype == np.float64
    with torch.inference_mode():
        for i, p in enumerate(prompts):
            for j, o in enumerate(options):
                logits = tb.model(input_ids=torch.tensor([p + o])).logits[0].double()
                lp = logits.log_softmax(-1)[len(p) - 1:-1]
                want = float(lp[torch.arange(len(o)), torch.tensor(o)].sum())
                assert got[i, j] == pytest.approx(want, abs=1e-4)
    assert (got < 0).all()


def test_seeded_sampling_is_reproducible(tb, prompts):
    # temperature 3: the taught model is sure of its taught answers, and at 1.0 a draw could
    # equal the greedy answer by chance
    a = tb.generate(prompts, max_new_tokens=8, stop_token_ids=[], temperature=3.0, seed=7)
    tb.batch_size = 2  # other batch mates: the per-prompt streams do not depend on them
    try:
        b = tb.generate(prompts, max_new_tokens=8, stop_token_ids=[], temperature=3.0, seed=7)
    finally:
        tb.batch_size = 4
    c = tb.generate(prompts, max_new_tokens=8, stop_token_ids=[], temperature=3.0, seed=8)
    greedy = tb.generate(prompts, max_new_tokens=8, stop_token_ids=[])
    ids = lambda gs: [g.token_ids for g in gs]  # noqa: E731
    assert ids(a) == ids(b)
    assert ids(a) != ids(c) and ids(a) != ids(greedy)


# -- the decoding loop's KV cache and attention against plain transformers --------------------
@pytest.fixture(scope="module")
def gqa_dir(taught_dir, tmp_path_factory) -> Path:
    """The taught model rewritten with grouped KV heads (4 query heads over its 2 KV heads, as
    SmolLM2 has 9 over 3): each query head is duplicated and o_proj averages the copies, so it
    gives the taught, prompt-dependent answers, and the grouped-heads attention path is used."""
    import shutil

    from transformers import AutoModelForCausalLM, LlamaConfig

    out = tmp_path_factory.mktemp("gqa") / "eai-gqa"
    shutil.copytree(taught_dir, out)
    src = AutoModelForCausalLM.from_pretrained(taught_dir, dtype=torch.float32)
    cfg = LlamaConfig.from_pretrained(taught_dir)
    heads, dim = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    cfg.num_attention_heads, cfg.head_dim = 2 * heads, dim
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    state = src.state_dict()
    for name, w in src.state_dict().items():
        if name.endswith("q_proj.weight"):
            state[name] = w.view(heads, dim, -1).repeat_interleave(2, dim=0).reshape(-1, w.shape[1])
        elif name.endswith("o_proj.weight"):
            state[name] = (w.view(-1, heads, dim).repeat_interleave(2, dim=1) / 2).reshape(
                w.shape[0], -1)
    model.load_state_dict(state, strict=False)  # lm_head is tied to the embeddings
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def gqa_tb(gqa_dir):
    yield from _one_thread_backend(gqa_dir, 16)


@pytest.fixture(scope="module")
def plain_model(gqa_dir):
    """The same model as loaded by plain transformers (its own "sdpa" attention): the reference."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(gqa_dir, dtype=torch.float32).eval()
    assert model.config._attn_implementation == "sdpa"
    return model


def mixed_prompts(tokenizer) -> list[list[int]]:
    """Prompts from ~15 to ~300 tokens: the taught ones stop early on eos, the others run to
    the length limit in the same padded batch."""
    from tiny_models import CORPUS

    long_texts = [" ".join(CORPUS[:k] * r) for k, r in ((4, 4), (2, 3), (3, 1))]
    return [chat_ids(tokenizer, t) for t in [q for q, _, _ in TAUGHT] + UNSEEN + long_texts]


def naive_generate(model, prompt, max_new_tokens, stop):
    """One prompt alone through `model.generate`, greedy (as benchmarks/drafting_speed.py's
    naive setup): the new token ids."""
    with torch.inference_mode():
        out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(
            1, len(prompt), dtype=torch.long), max_new_tokens=max_new_tokens, do_sample=False,
            eos_token_id=stop, pad_token_id=stop[0])
    return out[0, len(prompt):].tolist()


def test_gqa_attention_equals_transformers_sdpa():
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from eai.toolkit.drafting.kv_cache import _sdpa_gqa_attention

    class Attention(torch.nn.Module):
        num_key_value_groups, is_causal = 3, True

    gen = torch.Generator().manual_seed(0)
    for q_len in (1, 7):  # a decoding step, a prompt
        q, k, v = (torch.randn(3, h, n, 64, generator=gen)
                   for h, n in ((9, q_len), (3, 20), (3, 20)))
        mask = torch.ones(3, 1, q_len, 20, dtype=torch.bool).tril(20 - q_len)
        mask[1, ..., :6] = False  # left padding
        want, _ = sdpa_attention_forward(Attention(), q, k, v, mask, scaling=0.125)
        got, _ = _sdpa_gqa_attention(Attention(), q, k, v, mask, scaling=0.125)
        assert torch.equal(got, want)


@pytest.mark.parametrize("batch_size", [16, 3])
def test_generate_equals_naive_generate(gqa_tb, plain_model, batch_size):
    tb = gqa_tb
    assert tb.model.config._attn_implementation == "eai_sdpa_gqa"
    assert tb.model.model.layers[0].self_attn.num_key_value_groups == 2
    prompts = mixed_prompts(tb.tokenizer)
    lengths = sorted(len(p) for p in prompts)
    assert lengths[-1] > 10 * lengths[0]
    stop = [tb.tokenizer.eos_token_id]
    tb.batch_size = batch_size
    try:
        got = tb.generate(prompts, max_new_tokens=40, stop_token_ids=stop)
    finally:
        tb.batch_size = 16
    early = [g for g in got if g.finish_reason == "stop" and len(g.token_ids) < 40]
    assert len(early) >= len(TAUGHT) and any(g.finish_reason == "length" for g in got)
    for p, g in zip(prompts, got):
        assert g.token_ids == naive_generate(plain_model, p, 40, stop)
        assert g.finish_reason == ("stop" if g.token_ids[-1] in stop else "length")
    for g, (_, label, text) in zip(got, TAUGHT):  # the rewritten model still answers as taught
        assert tb.tokenizer.decode(g.token_ids, skip_special_tokens=True) == (
            f"<emotion>{label}</emotion><explanation>{text}</explanation>")


def test_score_equals_naive_forward(gqa_tb, plain_model):
    tb, tok = gqa_tb, gqa_tb.tokenizer
    end = tok.convert_tokens_to_ids("</emotion>")
    options = [tok.encode(w, add_special_tokens=False) + [end] for w in ("happy", "sad")]
    options.append([end])
    prompts = mixed_prompts(tok)
    got = tb.score(prompts, options)
    with torch.inference_mode():
        for i, p in enumerate(prompts):
            for j, o in enumerate(options):
                logits = plain_model(input_ids=torch.tensor([p + o])).logits[0].double()
                lp = logits.log_softmax(-1)[len(p) - 1:-1]
                want = float(lp[torch.arange(len(o)), torch.tensor(o)].sum())
                assert got[i, j] == pytest.approx(want, abs=1e-4)


def test_shared_prompt_start_is_computed_once(gqa_tb, plain_model, monkeypatch):
    """Prompts that start alike (a system prompt): the shared start is run on one row and
    copied to the others; answers and scores stay those of plain transformers."""
    from tiny_models import CORPUS

    from eai.toolkit.drafting.backend_transformers import _shared_prefix_length
    from eai.toolkit.drafting.kv_cache import PaddedBatchCache

    tb, tok = gqa_tb, gqa_tb.tokenizer
    texts = [q for q, _, _ in TAUGHT] + [" ".join(CORPUS[1:] * 2)]
    prompts = [chat_ids(tok, f"{CORPUS[0]} {CORPUS[1]}\n{t}") for t in texts]
    assert _shared_prefix_length(prompts) >= tb.min_shared_prefix
    assert max(map(len, prompts)) > 2 * min(map(len, prompts))
    copies = []
    copy_first_row = PaddedBatchCache.copy_first_row
    monkeypatch.setattr(PaddedBatchCache, "copy_first_row",
                        lambda self, rows: copies.append(rows) or copy_first_row(self, rows))
    stop = [tok.eos_token_id]
    got = tb.generate(prompts, max_new_tokens=30, stop_token_ids=stop)
    assert copies == [len(prompts)]
    assert [g.token_ids for g in got] == [naive_generate(plain_model, p, 30, stop)
                                          for p in prompts]
    end = tok.convert_tokens_to_ids("</emotion>")
    options = [tok.encode(w, add_special_tokens=False) + [end] for w in ("happy", "sad")]
    got = tb.score(prompts, options)
    with torch.inference_mode():
        for i, p in enumerate(prompts):
            for j, o in enumerate(options):
                lp = plain_model(input_ids=torch.tensor([p + o])).logits[0].double().log_softmax(-1)
                want = float(lp[len(p) - 1:-1][torch.arange(len(o)), torch.tensor(o)].sum())
                assert got[i, j] == pytest.approx(want, abs=1e-4)


def test_shared_prefix_length():
    from eai.toolkit.drafting.backend_transformers import _shared_prefix_length

    assert _shared_prefix_length([[1, 2, 3, 4], [1, 2, 5]]) == 2
    assert _shared_prefix_length([[1, 2, 3], [1, 2, 3, 4]]) == 2  # each keeps a token
    assert _shared_prefix_length([[7, 2], [1, 2]]) == 0
    assert _shared_prefix_length([[1, 2, 3]]) == 2


def test_cache_is_written_in_place(gqa_tb):
    """Decoding steps write into the buffers allocated after the prompt; dropping finished rows
    moves one kept row into each gap and leaves the kept rows' logits as they were; a forward
    past the room is refused."""
    tb = gqa_tb
    mixed = mixed_prompts(tb.tokenizer)
    prompts = [mixed[0], mixed[5], mixed[3], mixed[7]]  # short, long, short, long
    runs = []
    with torch.inference_mode():
        for drop in (False, True):
            logits, cache, pos = tb._prefill(prompts, room=3)
            layer = cache.layers[0]
            buffer, n = layer.key_buffer.data_ptr(), layer.get_seq_length()
            assert layer.get_max_length() == n + 3 and cache.attention_mask(1).shape == (4, n + 1)
            rows, nxt = [0, 1, 2, 3], logits.argmax(-1).tolist()
            if drop:
                rows = cache.keep_rows([1, 3])
                assert rows == [3, 1]  # row 3 moved into row 0; row 1 stayed
                pos, nxt = pos[rows], [nxt[r] for r in rows]
            for step in range(3):
                logits = tb._decode_step(cache, nxt, pos + step)
                nxt = logits.argmax(-1).tolist()
            assert layer.key_buffer.data_ptr() == buffer and layer.get_seq_length() == n + 3
            assert cache.attention_mask(0).shape == (len(rows), n + 3)
            runs.append(dict(zip(rows, logits)))
            with pytest.raises(RuntimeError, match="KV cache full"):
                tb._decode_step(cache, nxt, pos + 3)
    for r in (1, 3):
        torch.testing.assert_close(runs[1][r], runs[0][r], atol=1e-5, rtol=0)


def test_bad_input_is_named(tb, prompts):
    with pytest.raises(BackendError, match="prompt 1 is empty"):
        tb.generate([prompts[0], []], max_new_tokens=2, stop_token_ids=[])
    with pytest.raises(BackendError, match="out of range"):
        tb.score([[10**7]], [[1]])
    with pytest.raises(BackendError, match="positions"):
        tb.generate([prompts[0]], max_new_tokens=5000, stop_token_ids=[])


# -- OpenAIBackend against a fake OpenAI-compatible server ------------------------------------
class FakeServer:
    """A real HTTP server on a free port; `reply(path, payload) -> (status, body)` decides each
    answer and every request is recorded (path, payload, headers)."""

    def __init__(self, reply):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        fake = self
        self.reply, self.requests, self.lock = reply, [], threading.Lock()
        self.in_flight = self.max_in_flight = 0

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, payload):
                with fake.lock:
                    fake.requests.append((self.path, payload, dict(self.headers)))
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    status, body = fake.reply(self.path, payload)
                finally:
                    with fake.lock:
                        fake.in_flight -= 1
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._answer(None)

            def do_POST(self):
                n = int(self.headers["Content-Length"])
                self._answer(json.loads(self.rfile.read(n)))

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def posts(self):
        return [p for path, p, _ in self.requests if path == "/v1/completions"]


@pytest.fixture
def fake():
    servers = []

    def start(reply):
        servers.append(FakeServer(reply))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


MODELS = {"object": "list", "data": [{"id": "eai-tiny-v0-abc", "object": "model"}]}


def fake_completion(path, payload):
    """Answers like vLLM: the 'generated' ids are the prompt reversed, cut at a stop id."""
    if path == "/v1/models":
        return 200, MODELS
    time.sleep(0.05 * (payload["prompt"][0] % 3))  # answers finish out of order
    out = []
    for t in reversed(payload["prompt"]):
        out.append(t)
        if t in payload["stop_token_ids"] or len(out) == payload["max_tokens"]:
            break
    reason = "stop" if out[-1] in payload["stop_token_ids"] else "length"
    return 200, {"choices": [{"index": 0, "text": "", "token_ids": out, "finish_reason": reason,
                              "prompt_token_ids": payload["prompt"]}]}


def test_openai_payloads_order_and_concurrency(fake):
    from eai.toolkit.drafting.backend_openai import OpenAIBackend

    server = fake(fake_completion)
    backend = OpenAIBackend(server.url, concurrency=3, api_key="sk-secret")
    assert backend.model == "eai-tiny-v0-abc" and "sk-secret" not in repr(backend)
    prompts = [[i % 3, 10 + i, 20 + i, 30 + i] for i in range(9)]
    prompts[4] = [1, 14, 99, 34]  # 99 is a stop id
    gens = backend.generate(prompts, max_new_tokens=3, stop_token_ids=[99, 98],
                            temperature=0.5, seed=10)
    for i, (p, g) in enumerate(zip(prompts, gens)):
        if i == 4:
            assert g.token_ids == [34, 99] and g.finish_reason == "stop"
        else:
            assert g.token_ids == p[::-1][:3] and g.finish_reason == "length"
    sent = sorted(server.posts(), key=lambda p: p["seed"])
    assert [p["prompt"] for p in sent] == prompts  # token ids, and seed = seed + index
    for p in sent:
        assert p["seed"] - 10 == prompts.index(p["prompt"])
        assert p["model"] == "eai-tiny-v0-abc" and p["stop_token_ids"] == [99, 98]
        assert p["skip_special_tokens"] is False and p["return_token_ids"] is True
        assert p["temperature"] == 0.5 and p["max_tokens"] == 3 and p["top_p"] == 1.0
    assert 1 < server.max_in_flight <= 3
    assert all(h.get("Authorization") == "Bearer sk-secret" for _, _, h in server.requests)


def test_openai_score_sums_prompt_logprobs(fake):
    from eai.toolkit.drafting.backend_openai import OpenAIBackend

    # a log-prob the test can recompute; it depends on the token before, so on the prompt
    lp = lambda prev, t: -((t + 3 * prev) % 7 + 1) / 10  # noqa: E731

    def reply(path, payload):
        assert payload["prompt_logprobs"] == 0 and payload["max_tokens"] == 1
        time.sleep(0.05 * (len(payload["prompt"][0]) % 2))  # answers finish out of order
        return 200, {"choices": [
            {"index": j, "text": "", "finish_reason": "length",
             "prompt_logprobs": [None] + [{str(t): {"logprob": lp(prev, t), "rank": 2},
                                           str(t + 500): {"logprob": -0.01, "rank": 1}}
                                          for prev, t in zip(p, p[1:])]}  # + a top-1 token
            for j, p in reversed(list(enumerate(payload["prompt"])))]}

    server = fake(reply)
    backend = OpenAIBackend(server.url, model="m")
    prompts, options = [[1, 2, 3], [4, 5], [6, 6, 6, 6]], [[7], [8, 9], [5, 6, 11]]
    got = backend.score(prompts, options)
    want = [[sum(lp(a, b) for a, b in zip([p[-1]] + o, o)) for o in options] for p in prompts]
    np.testing.assert_allclose(got, want)
    assert len({tuple(r) for r in want}) == len(prompts)  # rows differ: their order is checked
    sent = sorted(p["prompt"] for p in server.posts())
    assert sent == sorted([p + o for o in options] for p in prompts)


def test_openai_retries_then_succeeds(fake):
    from eai.toolkit.drafting.backend_openai import OpenAIBackend

    answers = iter([(503, {"error": {"message": "busy"}}), (429, {"error": "slow down"})])

    def reply(path, payload):
        return next(answers, None) or fake_completion(path, payload)

    server = fake(reply)
    backend = OpenAIBackend(server.url, model="m", backoff_s=0.01)
    gens = backend.generate([[1, 2, 3]], max_new_tokens=2, stop_token_ids=[])
    assert gens[0].token_ids == [3, 2] and len(server.posts()) == 3


def test_openai_4xx_raises_with_message_and_no_retry(fake):
    from eai.toolkit.drafting.backend_openai import OpenAIBackend

    msg = "max_tokens=4000 cannot be greater than max_model_len=1024."
    server = fake(lambda path, payload: (400, {"error": {"message": msg, "code": 400}}))
    backend = OpenAIBackend(server.url, model="m", backoff_s=0.01)
    with pytest.raises(BackendError, match="HTTP 400: max_tokens=4000 cannot be greater"):
        backend.generate([[1, 2]], max_new_tokens=4000, stop_token_ids=[])
    assert len(server.posts()) == 1


def test_openai_gives_up_on_a_dead_server():
    from eai.toolkit.drafting.backend_openai import OpenAIBackend
    from eai.toolkit.serving import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(BackendError, match="still failing after 2 retries.*eai serve"):
        OpenAIBackend(url, max_retries=2, backoff_s=0.01)
