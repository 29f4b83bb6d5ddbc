"""Readers turn a source model file into a list of parametric ops in execution order."""
