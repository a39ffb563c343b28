"""ugosa: user-guided one-shot adaptation of music source separation models."""

__version__ = "0.1.0"
