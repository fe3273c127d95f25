"""train.py's library: the training loop, checkpoints, losses and loss plots."""
