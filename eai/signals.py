"""Signals for long-running commands (`eai serve`, `eai finetune`)."""

from __future__ import annotations

import signal


def stop_on_signals() -> None:
    """Ctrl-C (SIGINT), SIGTERM and SIGHUP raise KeyboardInterrupt, which the command turns into
    an orderly stop (the server stopped instead of orphaned; a finetuning run told how to
    resume).

    SIGINT is set even when it was inherited as ignored: a non-interactive shell starts
    background jobs (`eai serve ... &` in a script, CI runners) with SIGINT ignored, Python then
    leaves it ignored, and Ctrl-C or `kill -INT` did nothing at all. An ignored SIGHUP is kept:
    that is `nohup`, asking the command to outlive its terminal."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
    if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:
        signal.signal(signal.SIGHUP, interrupt)
