"""Separation models, one module per family (ConvTasNet today), each with its adaptation cut points."""
