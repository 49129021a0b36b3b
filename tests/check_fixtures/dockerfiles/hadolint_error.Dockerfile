FROM nvcr.io/nvidia/tritonserver:24.08-py3
RUN useradd --create-home app
WORKDIR models
USER app
CMD ["tritonserver", "--model-repository=/models", "--http-header-forward-pattern", "NVCF-.*", "--exit-timeout-secs=5"]
