"""Evaluation: metrics from logits, figures and reports from saved results."""
