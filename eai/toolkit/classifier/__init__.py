"""The MGST semantic classifier: a label-trained clip embedding and emotion probabilities.

    from eai.toolkit.classifier import ClassifierConfig, MGSTClassifier
    model = MGSTClassifier(ClassifierConfig(seed=0))
    model.fit(clips, labels, classes)          # labels: class indices into classes
    proba = model.predict_proba(new_clips)     # (n, C)
    emb = model.embed(new_clips)               # (n, C * branches)
    model.save("clf/"); model = MGSTClassifier.load("clf/")

It is also an `eai evaluate` method (name "mgst"). See model.py for the design.
"""

from eai.toolkit.classifier.config import ClassifierConfig
from eai.toolkit.classifier.model import MGSTClassifier, load_classifier

__all__ = ["ClassifierConfig", "MGSTClassifier", "load_classifier"]
