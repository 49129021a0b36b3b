"""A fixture: a PyTriton script that does not forward NVCF headers (check only reads it)."""

from pytriton.triton import Triton, TritonConfig

with Triton(config=TritonConfig(http_port=8000)) as triton:
    triton.serve()
