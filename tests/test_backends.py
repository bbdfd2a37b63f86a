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


@pytest.fixture(scope="module")
def tb(taught_dir):
    from eai.toolkit.drafting.backend_transformers import TransformersBackend

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as above: the backend keeps the caller's setting
    backend = TransformersBackend(taught_dir, batch_size=4)
    yield backend
    backend.close()
    torch.set_num_threads(threads)


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
    a = tb.generate(prompts, max_new_tokens=8, stop_token_ids=[], temperature=1.0, seed=7)
    tb.batch_size = 2  # other batch mates: the per-prompt streams do not depend on them
    try:
        b = tb.generate(prompts, max_new_tokens=8, stop_token_ids=[], temperature=1.0, seed=7)
    finally:
        tb.batch_size = 4
    c = tb.generate(prompts, max_new_tokens=8, stop_token_ids=[], temperature=1.0, seed=8)
    greedy = tb.generate(prompts, max_new_tokens=8, stop_token_ids=[])
    ids = lambda gs: [g.token_ids for g in gs]  # noqa: E731
    assert ids(a) == ids(b)
    assert ids(a) != ids(c) and ids(a) != ids(greedy)


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
