"""The DPT network in torch: encoder (timm ViT, optionally the ResNet-50 hybrid),
reassemble and fusion blocks, depth and segmentation heads."""

#: Public: these modules (the network's modules; dpt_ros.models exports the models); names starting with _ in them are private.
__all__ = [
    "blocks",
    "build",
    "depth_anything",
    "depth_anything3",
    "dpt",
    "encoder",
    "rope2d",
    "std_conv",
    "vggt",
]
