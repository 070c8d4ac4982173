# tws-bridge: one TWS API connection shared over ZeroMQ. README.md, "Deploying", has the commands.
#   docker build -t tws-bridge .                                   # on python:3.11-slim-bookworm
#   docker build --build-arg BASE=my-debian-with-python3-venv -t tws-bridge .
#   docker run --rm -p 127.0.0.1:5555:5555 -p 127.0.0.1:5556:5556 -p 127.0.0.1:9108:9108 tws-bridge --simulate
# Any Debian-like base with python3 (>= 3.11) and python3-venv works; the project goes into a virtualenv
# (/opt/venv), so a distribution Python's PEP 668 lock never matters.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

SHELL ["/bin/sh", "-eu", "-c"]
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/venv/bin:$PATH
WORKDIR /opt/tws-bridge
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY consumers ./consumers
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --quiet '.[nats]' \
    && rm -rf build ./*.egg-info \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent bridge

# Inside the container the sockets bind every interface: published ports (-p) arrive on the container's
# own address, never on its 127.0.0.1, so a loopback bind would make them unreachable. Who may connect is
# decided where the port is published: -p 127.0.0.1:5555:5555 keeps it to this host, hence the explicit
# TWSBRIDGE_ALLOW_PLAINTEXT_REMOTE (the bridge refuses a non-loopback bind without CURVE otherwise; give it
# keys with --curve-secret-key/--curve-clients to publish beyond this host). Flags override these.
ENV TWSBRIDGE_PUB=tcp://0.0.0.0:5555 TWSBRIDGE_REP=tcp://0.0.0.0:5556 TWSBRIDGE_METRICS=0.0.0.0:9108 \
    TWSBRIDGE_ALLOW_PLAINTEXT_REMOTE=1
EXPOSE 5555 5556 9108
USER 10001:10001

# Healthy = the request socket answers `status` and the bridge is connected to TWS (bridge/healthcheck.py).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "bridge.healthcheck", "--timeout", "4"]
# Exec form: tws-bridge is PID 1 and gets docker stop's SIGTERM itself; it cancels its TWS requests,
# publishes a final state message and exits 0 (in well under docker's 10 s grace period).
ENTRYPOINT ["tws-bridge"]
CMD ["--simulate"]
