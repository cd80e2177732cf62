"""Checkpoint files: where they come from (cache, download) and how they are read and
checked against the official key layouts."""
