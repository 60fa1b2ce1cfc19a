"""ModelTraining: LoRA fine-tuning runs on consented interactions."""
