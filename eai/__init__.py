"""eai: the Emotion-Action Interpreter toolkit."""

__version__ = "0.1.0"
