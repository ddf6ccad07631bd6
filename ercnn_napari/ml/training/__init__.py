"""Fine-tuning: configuration, the loss, the loop, distribution, memory and the run folder."""
