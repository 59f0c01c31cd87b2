"""HTTP API of the inference service: uploads in, prediction status out."""
