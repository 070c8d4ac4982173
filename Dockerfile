# tws-bridge: one TWS API connection shared over ZeroMQ.
#   docker build -t tws-bridge .
#   docker run --rm --network host tws-bridge --tws-port 4002      # TWS/Gateway on this host
#   docker run --rm -p 5555:5555 -p 5556:5556 tws-bridge --simulate \
#       --pub tcp://0.0.0.0:5555 --rep tcp://0.0.0.0:5556 --metrics 0.0.0.0:9108
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY consumers ./consumers
RUN pip install . && useradd --system --no-create-home bridge
USER bridge
EXPOSE 5555 5556 9108
ENTRYPOINT ["tws-bridge"]
CMD ["--simulate"]
