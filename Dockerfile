# The provisioner daemon: HTTP API + scheduler. Configuration by PROVISIONER_* variables.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY provisioner ./provisioner
COPY nas_adapters ./nas_adapters
COPY config ./config
RUN pip install --no-cache-dir .
# Not root: the daemon needs no privilege (port 8000, RADIUS over the network). Its home
# (var/: the generated key and a SQLite file, when no PostgreSQL URL is given) is its own.
RUN useradd --system --uid 10001 --home-dir /var/lib/provisioner --create-home provisioner
ENV PROVISIONER_HOME=/var/lib/provisioner \
    PROVISIONER_API_HOST=0.0.0.0
USER provisioner
EXPOSE 8000
CMD ["provisioner", "serve"]
