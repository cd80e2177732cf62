"""Checkpoint files: where they come from (cache, download) and how they are read and
checked against the official key layouts."""

#: Public: these modules (checkpoint files; dpt_ros.models exports the loaders); names starting with _ in them are private.
__all__ = [
    "checkpoint",
    "da3_checkpoint",
    "digest",
    "download",
    "hub",
    "key_rules",
    "layout",
    "transformers_format",
    "verify",
]
