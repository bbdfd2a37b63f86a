"""`eai review status`: how far review has come, and how much reviewers agree.

Agreement is measured on the emotion, over tasks that two or more reviewers annotated (skips
aside): the share of reviewer pairs that chose the same emotion, averaged over those tasks
(with two reviewers per task that is plain percent agreement).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations

from eai.toolkit.review.connection import Connection
from eai.toolkit.review.mapping import annotation_to_pair, result_values
from eai.toolkit.review.project import project_tasks, require_project


@dataclass
class ReviewStatus:
    url: str
    project: str
    project_id: int
    tasks: int = 0
    predictions: Counter = field(default_factory=Counter)  # per model version
    reviewed: int = 0  # tasks with at least one annotation (skips included)
    annotations: int = 0
    outcomes: Counter = field(default_factory=Counter)
    multi_reviewed: int = 0  # tasks with 2+ non-skipped annotations
    agreement: float | None = None  # mean pairwise emotion agreement over those tasks
    full_agreement: int = 0  # of those tasks, how many where every reviewer agreed

    def share(self, outcome: str) -> float | None:
        return self.outcomes[outcome] / self.annotations if self.annotations else None


def agreement_of(emotions: list[str | None]) -> float:
    pairs = list(combinations(emotions, 2))
    return sum(a == b for a, b in pairs) / len(pairs)


def review_status(project: str, conn: Connection) -> ReviewStatus:
    ls = conn.client()
    ref = require_project(ls, project, conn.url)
    st = ReviewStatus(url=conn.url, project=ref.title, project_id=ref.id)
    scores = []
    for task in project_tasks(ls, ref.id):
        st.tasks += 1
        st.predictions.update(p.get("model_version") for p in task.get("predictions") or [])
        anns = task.get("annotations") or []
        if not anns:
            continue
        st.reviewed += 1
        for a in anns:
            st.annotations += 1
            st.outcomes[annotation_to_pair(task, a, url=conn.url, project=ref.title,
                                           project_id=ref.id,
                                           preferred_model_version=ref.model_version
                                           ).outcome] += 1
        emotions = [result_values(a.get("result"))["emotion"] for a in anns
                    if not a.get("was_cancelled")]
        if len(emotions) >= 2:
            st.multi_reviewed += 1
            scores.append(agreement_of(emotions))
            st.full_agreement += len(set(emotions)) == 1
    st.agreement = sum(scores) / len(scores) if scores else None
    return st
