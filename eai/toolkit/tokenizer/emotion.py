"""The label-trained part of the MGST semantic level: the emotion classifier and its codes.

`eai tokenizer train` fits the MGST classifier (eai/toolkit/classifier) on the training clips
that carry an emotion and saves it in TOK_DIR/classifier/. Its softmax gives the emotion
probabilities (draft confidence, cold-start labels); its clip embedding is quantised by k-means
into a few codes that become `<emb_K>` tokens of the semantic block: a learned, label-aware
summary of the clip next to the interpretable descriptor levels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from eai.toolkit.clip import Clip

CLASSIFIER_DIR = "classifier"
MAX_EMBEDDING_CODES = 16
MIN_CLIPS_PER_EMOTION = 3  # fewer cannot support the classifier's inner cross-validation


def embedding_token(code: int) -> str:
    return f"<emb_{int(code)}>"


def train_emotion_level(clips: Sequence[Clip], out_dir: Path, seed: int) -> dict[str, Any]:
    """Fit the classifier and the embedding codebook; returns what tokenizer.json records."""
    from sklearn.cluster import KMeans

    from eai.toolkit.classifier import ClassifierConfig, MGSTClassifier

    labelled = [c for c in clips if c.emotion]
    classes = sorted({c.emotion for c in labelled})
    counts = {e: sum(c.emotion == e for c in labelled) for e in classes}
    if len(classes) < 2 or min(counts.values()) < MIN_CLIPS_PER_EMOTION:
        return {"trained": False,
                "reason": f"needs at least 2 emotions with {MIN_CLIPS_PER_EMOTION} training "
                          f"clips each; the training clips have {counts or 'none'}"}
    labels = np.array([classes.index(c.emotion) for c in labelled])
    classifier = MGSTClassifier(ClassifierConfig(seed=seed))
    classifier.fit(labelled, labels, classes)
    classifier.save(Path(out_dir) / CLASSIFIER_DIR)
    embeddings = classifier.embed(labelled)
    k = max(2, min(MAX_EMBEDDING_CODES, len(labelled) // 4))
    kmeans = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(embeddings)
    return {"trained": True, "classes": classes, "clips": len(labelled), "counts": counts,
            "embedding_codebook": kmeans.cluster_centers_.tolist()}


def nearest_codes(embeddings: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """(n, d) embeddings -> (n,) index of the nearest codebook row."""
    d = ((embeddings[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)
    return np.argmin(d, axis=1)
