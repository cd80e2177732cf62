"""Pictures for people: colour maps for depth, the ADE20K names and palette."""

#: Public: these modules (colour maps and pictures); names starting with _ in them are private.
__all__ = [
    "ade20k",
    "colormap",
    "pictures",
]
