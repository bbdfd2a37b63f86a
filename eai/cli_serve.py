"""`eai serve MODEL_DIR`: a vLLM OpenAI-compatible server for an EAI-LLM directory."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from eai.signals import stop_on_signals


def register(app) -> None:
    """Add the `serve` command to the `eai` app."""

    @app.command()
    def serve(
        model_dir: Path = typer.Argument(..., help="EAI-LLM model directory (eai model init)."),
        port: Optional[int] = typer.Option(None, help="Port on 127.0.0.1 (default: a free one)."),
        python: Optional[str] = typer.Option(None, help="Interpreter of the vLLM environment "
                                             "(default: $EAI_VLLM_PYTHON)."),
        dtype: Optional[str] = typer.Option(None, help="Weights dtype (default: float32 on "
                                            "CPU, as the transformers backend; auto on GPU)."),
        max_model_len: Optional[int] = typer.Option(None, help="Longest prompt + answer in "
                                                    "tokens (default: min(model, 4096))."),
        gpu_memory_utilization: Optional[float] = typer.Option(
            None, help="GPU only: fraction of GPU memory vLLM may use."),
        kv_cache_gb: int = typer.Option(1, help="CPU only: KV-cache GiB "
                                        "(VLLM_CPU_KVCACHE_SPACE)."),
        startup_timeout: float = typer.Option(600, help="Seconds to wait for the server."),
        vllm_arg: List[str] = typer.Option([], "--vllm-arg", help="Extra api_server flag, "
                                           "repeatable: --vllm-arg=--max-num-seqs=16."),
    ) -> None:
        """Serve MODEL_DIR with vLLM (OpenAI-compatible) until Ctrl-C."""
        from eai.cli import _fail, console, err
        from eai.toolkit.model import ModelError
        from eai.toolkit.serving import ServeError, VLLMServer

        def launched(s: VLLMServer) -> None:
            err.print(f"starting vLLM (pid {s.process.pid}, log {s.log_path}) ...",
                      highlight=False, soft_wrap=True)

        def stopping(s: VLLMServer) -> None:
            err.print("stopping the vLLM server (Ctrl-C again kills it) ...")

        stop_on_signals()
        server = None
        try:
            server = VLLMServer(model_dir, port=port, python=python, dtype=dtype,
                                max_model_len=max_model_len, kv_cache_gb=kv_cache_gb,
                                gpu_memory_utilization=gpu_memory_utilization,
                                startup_timeout=startup_timeout, extra_args=vllm_arg)
            server.start(on_launch=launched, on_stop=stopping)
            console.print(f"serving {server.served_model_name} at {server.base_url} "
                          f"(ready in {server.startup_s:.0f} s)", highlight=False, soft_wrap=True)
            console.print(f"draft with: eai draft-explanations DATASET -o drafts.jsonl --model "
                          f"{server.model_dir} --backend openai --base-url {server.base_url}",
                          highlight=False, soft_wrap=True)
            err.print("Ctrl-C stops it.")
            code = server.wait()
        except (ServeError, ModelError) as e:
            _fail(str(e))
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP, while starting or serving
            _stop(server)
            raise typer.Exit(0)
        server.stop()
        _fail(f"the vLLM server exited with code {code}; the end of its log "
              f"({server.log_path}):\n{server.log_tail()}")


def _stop(server) -> None:
    """Stop the server (a no-op when start() did already); a second Ctrl-C makes stop() kill
    the process group at once instead of waiting for vLLM to shut down."""
    if server is None:
        return
    try:
        server.stop()
    except KeyboardInterrupt:
        pass  # stop() sent SIGKILL to the group on its way out
