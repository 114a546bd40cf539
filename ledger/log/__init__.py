"""The log: signed envelopes, their stored form, the Merkle tree, checkpoints, verification."""
