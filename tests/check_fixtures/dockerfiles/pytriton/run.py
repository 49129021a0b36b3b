"""A fixture: a PyTriton script that uses the NVCF adapter (check only reads it)."""

from nvcf_helpers.pytriton import serve

serve(lambda triton: None)
