# nebula/cli: the `nebula` command as a release bundle on Node 24, for scripts and CI:
#
#   docker run --rm -e NEBULA_URL=https://nebula.example.com -e NEBULA_TOKEN=... nebula/cli apps list
#
#   npm run release                                builds dist/cli/ and this image (see deploy/README.md)
#   docker build -f deploy/docker/cli.Dockerfile -t nebula/cli dist/cli
#                                                  the same by hand, once dist/cli/ is built
#                                                  (npm run release -- --bundles-only), on node:24-slim
#
# Where node:24-slim cannot be pulled, the release script passes --build-arg BASE=nebula/node-base:24,
# made from this machine's Node 24 (tools/src/release/base-image.ts).
ARG BASE=node:24-slim
FROM ${BASE}

# Declared again to be seen after FROM (the base's name is a label too).
ARG BASE
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
ARG LICENSES=NOASSERTION
LABEL org.opencontainers.image.title="nebula-cli" \
      org.opencontainers.image.description="The nebula command: apps, rollouts and hosts of a Nebula API" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      org.opencontainers.image.base.name="${BASE}"

ENV NODE_ENV=production
WORKDIR /app
COPY main.js main.js.map package.json THIRD_PARTY_LICENSES.txt /app/
USER 10001:10001
# A command, not a server: no health check.
ENTRYPOINT ["node", "/app/main.js"]
CMD ["--help"]
