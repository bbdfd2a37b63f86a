"""The labeling config: the packaged template with the project's emotion choices filled in.

The template is a valid Label Studio config as it is (with the default label set), so it can be
pasted into any Label Studio by hand; push only swaps the emotion choices for the project's
labels. Text is edited as text, not through an XML tree, so the comment that documents the
task fields stays in the project.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from importlib import resources
from xml.sax.saxutils import quoteattr

from eai.toolkit.review.errors import ReviewError

TEMPLATE = "emotion_review.xml"
OBJECT = "clip"  # the object tag every control points at
CONTROLS = {"emotion": "choices", "explanation": "textarea", "quality": "rating",
            "flags": "choices"}
FLAG_CONTRADICTS = "contradicts"
FLAG_REJECT = "reject"
_EMOTION_BLOCK = re.compile(r'(<Choices\s+name="emotion"[^>]*>)(.*?)(\s*</Choices>)', re.DOTALL)


def load_template(name: str = TEMPLATE) -> str:
    path = resources.files("eai") / "templates" / "label_studio" / name
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReviewError(f"template {name!r} is missing from the eai package "
                          f"(eai/templates/label_studio/); reinstall eai") from None


def choices_of(config: str, name: str = "emotion") -> list[str]:
    """The values of the <Choice>s of the Choices control `name` in a config."""
    try:
        root = ET.fromstring(config)
    except ET.ParseError as e:
        raise ReviewError(f"the project's labeling config is not XML: {e}") from None
    for node in root.iter("Choices"):
        if node.get("name") == name:
            return [c.get("alias") or c.get("value") for c in node.iter("Choice")]
    return []


def with_emotions(config: str, labels: list[str]) -> str:
    """config with the emotion choices replaced by labels (in that order)."""
    if not labels:
        raise ReviewError("no emotion labels to offer reviewers")
    m = _EMOTION_BLOCK.search(config)
    if not m:
        raise ReviewError('the labeling config has no <Choices name="emotion"> block')
    indent = "\n    "
    body = "".join(f"{indent}<Choice value={quoteattr(lab)}/>" for lab in labels)
    return config[:m.start(2)] + body + config[m.end(2):]


def check_config(config: str) -> None:
    """Raise when a project's config lacks the controls push and pull rely on."""
    root = ET.fromstring(config)
    names = {n.get("name"): n.tag.lower() for n in root.iter() if n.get("name")}
    missing = [f"{tag} {name!r}" for name, tag in CONTROLS.items() if names.get(name) != tag]
    if OBJECT not in names:
        missing.append(f"object {OBJECT!r}")
    if missing:
        raise ReviewError(f"the project's labeling config lacks {', '.join(missing)}: it was "
                          f"not made by `eai review push`; use another --project name")
