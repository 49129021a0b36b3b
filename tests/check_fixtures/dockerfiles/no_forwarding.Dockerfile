FROM nvcr.io/nvidia/tritonserver:24.08-py3
RUN useradd --create-home app
USER app
CMD ["tritonserver", "--model-repository=/models", "--exit-timeout-secs=5"]
