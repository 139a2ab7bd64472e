FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine engine
COPY server server
COPY migrations migrations
COPY samples samples
COPY templates templates
COPY addin addin
RUN pip install --no-cache-dir .
ENV PORT=8000
EXPOSE 8000
CMD ["paysheet", "serve"]
