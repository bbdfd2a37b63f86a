"""`eai serve`: the server's life cycle with stand-in interpreters (fast), then a real vLLM server
on the tiny model compared token for token with the in-process backend (marker `vllm`).

Every `eai serve` here starts with SIGINT inherited as ignored, as a non-interactive shell starts
a background job and as CI started the test suite: Ctrl-C then once did nothing at all."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from vllm_support import need_vllm

from eai.toolkit.serving import ServeError, VLLMServer, check_port, group_pids

PROBE_OK = '{"vllm": true, "cpu": true, "version": "0.0+cpu"}'


def stand_in(tmp_path: Path, body: str) -> str:
    """An executable 'python' that answers the environment probe like a vLLM CPU environment
    and runs `body` (sh) when started as the server."""
    exe = tmp_path / "python"
    exe.write_text(f"#!/bin/sh\nif [ \"$1\" = \"-c\" ]; then echo '{PROBE_OK}'; exit 0; fi\n"
                   f"{body}\n")
    exe.chmod(0o755)
    return str(exe)


def processes_with(text: str) -> list[int]:
    """Pids whose command line contains text (read from /proc)."""
    out = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if text in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                out.append(int(d.name))
        except OSError:
            pass
    return out


# A stand-in server that answers /health and /v1/models (any GET) with the served model name.
FAKE_SERVER = """import http.server, json, sys
a = sys.argv
port, name = int(a[a.index("--port") + 1]), a[a.index("--served-model-name") + 1]
class Models(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"data": [{"id": name}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", port), Models).serve_forever()
"""


@contextmanager
def sigint_ignored():
    """SIGINT ignored here while a child starts: the child inherits that, across exec."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def wait_for_text(path: Path, text: str, timeout: float) -> str:
    deadline, found = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        found = path.read_text() if path.exists() else ""
        if text in found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in {path} within {timeout} s:\n{found}")


def server_pid(stderr: Path, timeout: float = 60) -> int:
    """The server's pid, which is its process group, from `starting vLLM (pid N, log ...`."""
    text = wait_for_text(stderr, "starting vLLM (pid ", timeout)
    return int(text.split("starting vLLM (pid ")[1].split(",")[0])


def what_happened(stderr: Path) -> str:
    """`eai serve`'s stderr and, once it named one, the end of the vLLM log: for failures."""
    text = stderr.read_text()
    if ", log " not in text:
        return f"eai serve's stderr:\n{text}"
    log = Path(text.split(", log ", 1)[1].split(")", 1)[0])
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:]) if log.exists() else ""
    return f"eai serve's stderr:\n{text}\nthe end of {log}:\n{tail}"


def interrupt(cli: subprocess.Popen, stderr: Path, timeout: float = 90) -> tuple[int, float]:
    """Ctrl-C to `eai serve`: its exit code and how long it took to exit."""
    t0 = time.monotonic()
    cli.send_signal(signal.SIGINT)
    try:
        code = cli.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"eai serve still runs {timeout} s after Ctrl-C; "
                             f"{what_happened(stderr)}") from None
    return code, time.monotonic() - t0


@pytest.fixture
def serve_cli(tmp_path):
    """start(model_dir, python, *flags) -> (process, stderr file): `eai serve` in a subprocess
    with SIGINT inherited as ignored. stderr goes to a file: a pipe nobody reads could fill and
    block the command. Afterwards kills whatever a failed test left running."""
    env = dict(os.environ, EAI_HOME=str(tmp_path / "home"))
    started = []

    def start(model_dir, python: str, *flags: str):
        stderr = tmp_path / f"serve-{len(started)}.stderr"
        with open(stderr, "w") as f, sigint_ignored():
            cli = subprocess.Popen([sys.executable, "-m", "eai.cli", "serve", str(model_dir),
                                    "--python", python, *flags], env=env,
                                   stdout=subprocess.PIPE, stderr=f, text=True)
        started.append((cli, stderr))
        return cli, stderr

    yield start
    for cli, stderr in started:
        if cli.poll() is None:
            cli.kill()
        cli.communicate()
        if "starting vLLM (pid " in stderr.read_text():
            try:
                os.killpg(server_pid(stderr), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EAI_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_missing_environment_names_the_fix(tiny_model_dir, home, monkeypatch):
    monkeypatch.delenv("EAI_VLLM_PYTHON", raising=False)
    with pytest.raises(ServeError, match="EAI_VLLM_PYTHON is not set.*bash scripts/setup_vllm"):
        VLLMServer(tiny_model_dir).start()
    with pytest.raises(ServeError, match="does not exist.*bash scripts/setup_vllm.sh"):
        VLLMServer(tiny_model_dir, python=str(home / "nope" / "python")).start()
    with pytest.raises(ServeError, match="has no vllm package"):
        VLLMServer(tiny_model_dir, python=sys.executable).start()  # eai's own venv: no vLLM


def test_bad_model_dir_and_busy_port(tmp_path, tiny_model_dir, home):
    from eai.toolkit.model import ModelError

    with pytest.raises(ModelError, match="no eai.json"):
        VLLMServer(tmp_path)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        with pytest.raises(ServeError, match=f"port {busy} on 127.0.0.1 is busy"):
            VLLMServer(tiny_model_dir, port=busy, python=stand_in(tmp_path, "exit 9")).start()
    assert not (home / "logs").exists() or not any((home / "logs").iterdir())


def test_unsupported_head_dim_is_refused_before_starting(tmp_path, tiny_model_dir, home):
    model = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model)
    cfg = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps(dict(cfg, head_dim=16)))
    with pytest.raises(ServeError, match="head_dim 16 is not supported by vLLM on CPU"):
        VLLMServer(model, python=stand_in(tmp_path, "exit 9")).start()


def test_early_exit_fails_fast_with_log_tail_and_hint(tmp_path, tiny_model_dir, home):
    body = "echo 'Traceback (most recent call last):'\necho 'ImportError: libcuda.so.1' >&2\nexit 3"
    server = VLLMServer(tiny_model_dir, python=stand_in(tmp_path, body))
    t0 = time.monotonic()
    with pytest.raises(ServeError) as e:
        server.start()
    assert time.monotonic() - t0 < 10
    msg = str(e.value)
    assert "exited with code 3" in msg and "ImportError: libcuda.so.1" in msg
    assert "bash scripts/setup_vllm.sh" in msg and str(server.log_path) in msg
    assert server.log_path.parent == home / "logs"
    cmd = server.log_path.read_text().splitlines()[0]  # the command line heads the log
    for part in ("-m vllm.entrypoints.openai.api_server", "--enforce-eager", "--dtype float32",
                 f"--served-model-name {server.served_model_name}", "--host 127.0.0.1",
                 f"--max-model-len {min(server.config['max_position_embeddings'], 4096)}"):
        assert part in cmd


def test_timeout_and_stop_kill_the_whole_group(tmp_path, tiny_model_dir, home):
    # a 'server' that never answers, ignores SIGTERM and has a child in its group
    body = "trap '' TERM\nsleep 300 &\necho $! > \"$EAI_HOME/child\"\nwait"
    server = VLLMServer(tiny_model_dir, python=stand_in(tmp_path, body), startup_timeout=2,
                        stop_timeout=1)
    with pytest.raises(ServeError, match="did not answer within 2 s"):
        server.start()
    child = int((home / "child").read_text())
    assert server.process.returncode == -signal.SIGKILL  # SIGTERM was ignored
    assert not group_pids(server.process.pid)
    assert not os.path.exists(f"/proc/{child}") or " Z " in Path(f"/proc/{child}/stat").read_text()


def test_cli_ctrl_c_when_serving_stops_the_group(tmp_path, tiny_model_dir, serve_cli):
    script = tmp_path / "fake_server.py"
    script.write_text(FAKE_SERVER)
    body = f'{sys.executable} {script} "$@" &\nsleep 300 &\nwait'  # a child like vLLM's engine
    cli, stderr = serve_cli(tiny_model_dir, stand_in(tmp_path, body))
    first = cli.stdout.readline()
    assert first.startswith("serving "), stderr.read_text()
    pgid = server_pid(stderr)
    assert len(group_pids(pgid)) == 3
    code, took = interrupt(cli, stderr, timeout=30)
    assert code == 0 and took < 10, stderr.read_text()
    assert "stopping the vLLM server" in stderr.read_text()
    assert not group_pids(pgid)


def test_cli_ctrl_c_while_starting_stops_the_group(tmp_path, tiny_model_dir, serve_cli):
    cli, stderr = serve_cli(tiny_model_dir, stand_in(tmp_path, "sleep 300 &\nwait"))
    pgid = server_pid(stderr)
    time.sleep(1)  # in the readiness loop now
    code, took = interrupt(cli, stderr, timeout=30)
    assert code == 0 and took < 10, stderr.read_text()
    assert "serving" not in cli.stdout.read()
    assert not group_pids(pgid)


def test_cli_second_ctrl_c_kills_at_once(tmp_path, tiny_model_dir, serve_cli):
    """A server that ignores SIGTERM would get 20 s to stop; a second Ctrl-C cuts that short."""
    cli, stderr = serve_cli(tiny_model_dir, stand_in(tmp_path, "trap '' TERM\nsleep 300 &\nwait"))
    pgid = server_pid(stderr)
    t0 = time.monotonic()
    cli.send_signal(signal.SIGINT)
    wait_for_text(stderr, "stopping the vLLM server", 10)
    time.sleep(0.5)
    assert cli.poll() is None and group_pids(pgid)  # SIGTERM ignored: still waiting
    cli.send_signal(signal.SIGINT)
    assert cli.wait(timeout=30) == 0, stderr.read_text()
    assert time.monotonic() - t0 < 10
    assert not group_pids(pgid)


# -- a real vLLM server ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vllm_exe() -> str:
    return need_vllm()


@pytest.fixture(scope="module")
def taught(vllm_exe, tiny_taught_dir) -> Path:
    """The taught tiny model (tests/tiny_models.py): answers that depend on the prompt."""
    return tiny_taught_dir


@pytest.mark.vllm
def test_cli_serves_and_stops_on_ctrl_c(taught, vllm_exe, serve_cli):
    """`eai serve` in a subprocess: prints the URL and the model name, serves, exits 0 soon
    after SIGINT and leaves no process behind. Runs before the module's server (one at a
    time)."""
    import requests

    from eai.toolkit.model import read_info
    cli, stderr = serve_cli(taught, vllm_exe, "--startup-timeout", "300")
    first = cli.stdout.readline()  # blocks until ready (or the command failed)
    assert first.startswith("serving "), what_happened(stderr)
    name, url = first.split()[1], first.split()[3]
    assert cli.stdout.readline().startswith("draft with: eai draft-explanations")
    models = requests.get(f"{url}/models", timeout=10).json()["data"]
    assert [m["id"] for m in models] == [name] == [read_info(taught).model_version]
    port = int(url.split(":")[2].split("/")[0])
    pgid, pids = server_pid(stderr), processes_with(f"--port {port}")
    assert len(group_pids(pgid)) >= 2  # the API server and its engine process
    code, took = interrupt(cli, stderr)
    # SIGTERM to the group, SIGKILL after 20 s: well within 60 s even on a busy machine
    assert code == 0 and took < 60, what_happened(stderr)
    assert not group_pids(pgid) and not [p for p in pids if os.path.exists(f"/proc/{p}")]
    check_port(port)  # free again


@pytest.mark.vllm
def test_cli_ctrl_c_while_vllm_starts(taught, vllm_exe, serve_cli):
    """Ctrl-C while vLLM starts: once its engine process runs (about 25 s in, here), or after
    120 s in any case. Once in CI the engine process had not appeared after 240 s, on the
    second start of the module; waiting for it is not what this test is about, so Ctrl-C
    then comes in whatever phase vLLM is, and the failure messages carry vLLM's log."""
    cli, stderr = serve_cli(taught, vllm_exe, "--startup-timeout", "300")
    pgid = server_pid(stderr)
    deadline = time.monotonic() + 120
    while len(group_pids(pgid)) < 2 and cli.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cli.poll() is None, (f"eai serve exited with code {cli.returncode} while vLLM "
                                f"started; {what_happened(stderr)}")
    code, took = interrupt(cli, stderr)
    assert code == 0 and took < 60, what_happened(stderr)
    assert "serving" not in cli.stdout.read()  # it was still starting
    assert not group_pids(pgid), what_happened(stderr)


@pytest.fixture(scope="module")
def server(vllm_exe, taught, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EAI_HOME", str(tmp_path_factory.mktemp("home")))
        with VLLMServer(taught, python=vllm_exe, startup_timeout=300) as s:
            yield s


@pytest.fixture(scope="module")
def both(server, taught):
    from eai.toolkit.drafting.backend_openai import OpenAIBackend
    from eai.toolkit.drafting.backend_transformers import TransformersBackend

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the server uses the cores too; a tiny model needs no more
    local = TransformersBackend(taught)
    remote = OpenAIBackend(server.base_url)
    yield local, remote
    local.close()
    remote.close()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def prompts(both):
    from tiny_models import TAUGHT, UNSEEN, chat_ids

    return [chat_ids(both[0].tokenizer, t) for t in [q for q, _, _ in TAUGHT] + UNSEEN]


@pytest.mark.vllm
def test_generate_matches_transformers(both, prompts, server):
    local, remote = both
    assert remote.model == server.served_model_name
    tok = local.tokenizer
    end = tok.convert_tokens_to_ids("</explanation>")
    for stops in ([], [end]):
        want = local.generate(prompts, max_new_tokens=40, stop_token_ids=stops)
        got = remote.generate(prompts, max_new_tokens=40, stop_token_ids=stops)
        assert [g.token_ids for g in got] == [g.token_ids for g in want]
        assert [g.finish_reason for g in got] == [g.finish_reason for g in want]
    # the structural tokens come back as single ids and as text
    structural = tok.convert_tokens_to_ids(["<emotion>", "</emotion>", "<explanation>"])
    assert all(set(structural) <= set(g.token_ids) for g in got[:3])
    assert all(g.token_ids[-1] == end and g.finish_reason == "stop" for g in got[:3])
    assert tok.decode(got[0].token_ids).startswith("<emotion>sad</emotion><explanation>")
    short = remote.generate(prompts[:2], max_new_tokens=3, stop_token_ids=[end])
    assert all(g.finish_reason == "length" and len(g.token_ids) == 3 for g in short)


@pytest.mark.vllm
def test_score_matches_transformers(both, prompts):
    """Both run float32, but vLLM's CPU kernels sum in another order than torch's. Measured:
    3e-6 at most on this 2-layer model (7e-5 on 30-layer SmolLM2); 5e-4 leaves room for other
    CPUs' kernels and is still far below the gaps that decide a label (> 0.1 here)."""
    local, remote = both
    tok = local.tokenizer
    end = tok.convert_tokens_to_ids("</emotion>")
    options = [tok.encode(w, add_special_tokens=False) + [end]
               for w in ("sad", "happy", "angry", "neutral")]
    prompts = [p + tok.convert_tokens_to_ids(["<emotion>"]) for p in prompts]
    want, got = local.score(prompts, options), remote.score(prompts, options)
    np.testing.assert_allclose(got, want, atol=5e-4, rtol=0)
    assert (got.argmax(1)[:3] == [0, 1, 2]).all()  # the taught labels win


@pytest.mark.vllm
def test_seeded_sampling_is_reproducible_on_the_server(both, prompts):
    remote = both[1]
    a = remote.generate(prompts, max_new_tokens=8, stop_token_ids=[], temperature=1.0, seed=3)
    b = remote.generate(prompts, max_new_tokens=8, stop_token_ids=[], temperature=1.0, seed=3)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]


@pytest.mark.vllm
@pytest.mark.parametrize("mode", ["model", "cold-start"])
def test_drafting_through_the_server_equals_in_process(both, server, taught, sample_dataset,
                                                       tmp_path, mode):
    """`eai draft-explanations` end to end through both backends, greedy: the same labels,
    texts and answers; the label-set probabilities agree to the scores' tolerance."""
    from eai.toolkit.drafting.draft import read_drafts
    from eai.toolkit.drafting.run import DraftConfig, run_drafting

    local, remote = both
    out = {}
    for name, backend in (("transformers", local), ("openai", remote)):
        out[name] = tmp_path / f"{name}.jsonl"
        cfg = DraftConfig(dataset=sample_dataset, out=out[name], model_dir=taught, mode=mode,
                          limit=6, batch_size=3, max_new_tokens=40)
        s = run_drafting(cfg, backend=backend)
        assert s.drafted == 6 and not s.failed
    a, b = list(read_drafts(out["transformers"])), list(read_drafts(out["openai"]))
    assert [d.backend for d in b] == ["openai"] * 6
    for x, y in zip(a, b):
        assert (x.clip_id, x.emotion, x.explanation, x.raw_text, x.warnings) == \
            (y.clip_id, y.emotion, y.explanation, y.raw_text, y.warnings)
        assert x.faithfulness == y.faithfulness and x.label_source == y.label_source
        for label, p in x.probabilities.items():
            assert abs(p - y.probabilities[label]) < 1e-3


@pytest.mark.vllm
def test_stop_kills_the_server(server):
    """Last: stops the module's server (its fixture's own stop is then a no-op)."""
    pgid, port = server.process.pid, server.port
    assert server.alive() and group_pids(pgid)
    server.stop()
    assert not server.alive() and not group_pids(pgid)
    check_port(port)
