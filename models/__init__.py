"""Network and training: encoder, feature tower, ranking head, losses, metrics, training loop."""
