"""The command-line layer: reads argparse options and prints; the library below returns values."""
