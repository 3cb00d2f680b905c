"""Tables of the content part of evalkit (filled in with its migration)."""
