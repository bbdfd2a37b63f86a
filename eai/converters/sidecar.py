"""Sidecar JSON: `<file stem>.json` beside a motion file, stating what the file cannot.

Recognised keys: layout, fps, units (for NPY), and label fields: emotion or label, subject,
action. Other keys are ignored (Bandai-Namco's sidecars hold integer indices, for example).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eai.converters.errors import ConvertError


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def load_sidecar(path: str | Path) -> dict[str, Any]:
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConvertError(str(side), f"invalid JSON: {e.msg}",
                           position=f"line {e.lineno} column {e.colno}",
                           fix="fix the sidecar or remove it") from None
    if not isinstance(data, dict):
        raise ConvertError(str(side), "a sidecar must hold a JSON object",
                           fix='e.g. {"layout": "smpl-22", "fps": 30}')
    return data
