FROM nvcr.io/nvidia/tritonserver:24.08-py3
RUN useradd --create-home app
COPY --chown=app model_repository /models
USER app
EXPOSE 8000
CMD ["tritonserver", "--model-repository=/models", "--http-header-forward-pattern", "NVCF-.*"]
