"""vibeplane's LoRA SFT trainer (runs in a Kubeflow Trainer TrainJob)."""
