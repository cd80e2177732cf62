"""The model families, one module each (timm's model files are the example): its config
table (``SPECS``), its :class:`~dpt_ros.models.family.ModelFamily` (``FAMILY``: network
builder, weight-key conversion, input sizing, preprocessing, decoding) and the data they
use. :mod:`dpt_ros.models.registry` lists the families; what a family is, and what a
model gives, are in :mod:`dpt_ros.models.family`. A new family is one module here and
one line in the registry.

The modules import no torch at start-up (the registry reads their tables when command
lines are parsed): each loads the network and its transforms where it runs them."""

#: Public: these modules (one per family); names starting with _ in them are private.
__all__ = ["depth_anything_3", "depth_anything_v2", "dpt", "vggt"]
