"""The DPT network in torch: encoder (timm ViT, optionally the ResNet-50 hybrid),
reassemble and fusion blocks, depth and segmentation heads."""
