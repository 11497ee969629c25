"""Export tools run from a checkout (`python -m export`); the logic lives in amgan_tf."""
