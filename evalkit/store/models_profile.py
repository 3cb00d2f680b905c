"""Tables of the profile part of evalkit (filled in with its migration)."""
