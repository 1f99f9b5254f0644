# nebula/api: the control plane's API (REST, tRPC, host joins) as a release bundle on Node 24.
#
#   npm run release                              builds dist/api/ and this image (see deploy/README.md)
#   docker build -f deploy/docker/api.Dockerfile -t nebula/api dist/api
#                                                the same by hand, once dist/api/ is built
#                                                (npm run release -- --bundles-only), on node:24-slim
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
LABEL org.opencontainers.image.title="nebula-api" \
      org.opencontainers.image.description="Nebula control plane API: apps, rollouts, hosts and their bus credentials (REST and tRPC)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      org.opencontainers.image.base.name="${BASE}"

# production: error bodies carry no stack traces.
ENV NODE_ENV=production API_PORT=8080
WORKDIR /app
COPY main.js main.js.map package.json THIRD_PARTY_LICENSES.txt /app/
# The dashboard, served at /ui (the API finds ui/ beside main.js).
COPY ui /app/ui

# Not root: the API only talks to PostgreSQL and NATS over the network. Files it is given
# (NATS_CREDS, BUS_KEYS_FILE, NATS_TLS_CA) must be readable by uid 10001.
USER 10001:10001
EXPOSE 8080

# Node itself asks /health (a slim base has no curl). The API must listen on 127.0.0.1 too:
# keep API_HOST at its default, 0.0.0.0.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.API_PORT||8080)+'/health',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# node is PID 1, which gets no default signal handlers: runService (libs/service-kit) handles
# SIGTERM and SIGINT itself, stops taking requests, finishes those in flight and exits 0.
ENTRYPOINT ["node", "/app/main.js"]
