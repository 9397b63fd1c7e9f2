"""Sequence models: each implements the model contract (loglik, state_arrays, from_state)."""
