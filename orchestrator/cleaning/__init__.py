"""Cleaning: the shared rules enforced on raw data, producing typed silver, quarantine and gold tables."""
