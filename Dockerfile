# odnos: one image for every part (collector, dashboard, scheduler, migrate); the command picks the part.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 ODNOS_DATA_DIR=/data ODNOS_HOST=0.0.0.0
WORKDIR /app
COPY pyproject.toml README.md ./
COPY tracker ./tracker
COPY dashboard ./dashboard
COPY schemas ./schemas
RUN pip install --no-cache-dir ".[postgres]" && useradd --system --home /data odnos && mkdir -p /data \
    && chown odnos /data
USER odnos
VOLUME /data
EXPOSE 8000
CMD ["odnos", "serve"]
