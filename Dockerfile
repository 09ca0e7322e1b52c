# One image for every REX service; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /rex
COPY pyproject.toml README.md ./
COPY rex rex
COPY engine engine
COPY gateway gateway
COPY settlement_worker settlement_worker
COPY config config
RUN pip install --no-cache-dir .
ENV REX_CONFIG_DIR=/rex/config REX_DATA_DIR=/data
VOLUME /data
