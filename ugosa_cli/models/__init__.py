"""Separation model architectures beyond the ConvTasNet, and the bundled demo model file."""
