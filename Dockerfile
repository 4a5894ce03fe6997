# deskbot's production image: the web front (`deskbot serve`) and the workers (`deskbot worker`)
# run from it; docker-compose.yml puts them next to PostgreSQL and Redis (README "Production set-up").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# config.yaml's relative paths (intents/data, examples/shop, var/) are read from here.
COPY . .
RUN pip install . \
    && useradd --system --home-dir /app --shell /usr/sbin/nologin deskbot \
    && mkdir -p var \
    && deskbot train \
    && chown -R deskbot:deskbot var

USER deskbot
EXPOSE 8080
# Listen on every interface inside the container; the shop's proxy terminates HTTPS in front.
ENV DESKBOT_WEB__HOST=0.0.0.0
CMD ["deskbot", "serve"]
