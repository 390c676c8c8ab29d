"""Networks: MONAI UNETR backbones, the PEMMA multi-modal upgrade, peft adapters per task."""
