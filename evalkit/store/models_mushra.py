"""Tables of the mushra part of evalkit (filled in with its migration)."""
