# The provisioner daemon: HTTP API + scheduler. Configuration by PROVISIONER_* variables.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY provisioner ./provisioner
COPY nas_adapters ./nas_adapters
COPY config ./config
RUN pip install --no-cache-dir .
ENV PROVISIONER_API_HOST=0.0.0.0
EXPOSE 8000
CMD ["provisioner", "serve"]
