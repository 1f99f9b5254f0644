# nebula/notifier: writes the hosts' signed results and heartbeats from NATS into PostgreSQL, as a
# release bundle on Node 24.
#
#   npm run release                                   builds dist/notifier/ and this image (see deploy/README.md)
#   docker build -f deploy/docker/notifier.Dockerfile -t nebula/notifier dist/notifier
#                                                     the same by hand, once dist/notifier/ is built
#                                                     (npm run release -- --bundles-only), on node:24-slim
#
# The build context is the bundle folder: plain JavaScript with every dependency inlined, so the
# image needs nothing but Node. Where node:24-slim cannot be pulled, the release script passes
# --build-arg BASE=nebula/node-base:24, made from this machine's Node 24 (tools/src/release/base-image.ts).
ARG BASE=node:24-slim
FROM ${BASE}

# Declared again to be seen after FROM (the base's name is a label too).
ARG BASE
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
ARG LICENSES=NOASSERTION
LABEL org.opencontainers.image.title="nebula-notifier" \
      org.opencontainers.image.description="Nebula notifier: checks the hosts' signed results and heartbeats and writes them to PostgreSQL" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      org.opencontainers.image.base.name="${BASE}"

ENV NODE_ENV=production METRICS_PORT=8082
WORKDIR /app
COPY main.js main.js.map package.json THIRD_PARTY_LICENSES.txt /app/

# Not root: the notifier only talks to PostgreSQL and NATS over the network. Files it is given
# (NATS_CREDS, NATS_TLS_CA) must be readable by uid 10001.
USER 10001:10001
EXPOSE 8082

# Node itself asks /health on the ops port (a slim base has no curl).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.METRICS_PORT||8082)+'/health',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# node is PID 1, which gets no default signal handlers: runService (libs/service-kit) handles
# SIGTERM and SIGINT itself, writes and acks what it holds, and exits 0.
ENTRYPOINT ["node", "/app/main.js"]
