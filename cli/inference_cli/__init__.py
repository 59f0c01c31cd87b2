"""`inference`: the command-line client of the inference API."""
