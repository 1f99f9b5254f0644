# nebula/worker: the agent on every host of a fleet, as a release bundle on Node 24. One per host:
#
#   docker run -d --restart unless-stopped --name nebula-worker \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v /etc/machine-id:/etc/machine-id:ro \
#     -v nebula-worker:/var/lib/nebula \
#     -e NEBULA_URL=https://nebula.example.com -e NEBULA_JOIN_TOKEN=nebula-join.... -e APP_NAME=web \
#     nebula/worker:<version>
#
#   npm run release                                 builds dist/worker/ and this image (see deploy/README.md)
#   docker build -f deploy/docker/worker.Dockerfile -t nebula/worker dist/worker
#                                                   the same by hand, once dist/worker/ is built
#                                                   (npm run release -- --bundles-only), on node:24-slim
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
LABEL org.opencontainers.image.title="nebula-worker" \
      org.opencontainers.image.description="Nebula worker: runs the containers of its host's apps on the host's Docker engine" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      org.opencontainers.image.base.name="${BASE}"

# The host id: HOST_ID, else the machine id in MACHINE_ID_FILE, which is the host's /etc/machine-id
# mounted read-only: the same across restarts and re-creations of this container. Never the
# container's hostname (new with every container). This image has no machine id of its own: with
# neither, the worker stops at start (exit 2), naming HOST_ID and MACHINE_ID_FILE.
# The credentials file (the host's bus identity, written when it joins) lives on a volume, so a
# re-created container keeps its identity and does not need a new join token.
ENV NODE_ENV=production \
    METRICS_PORT=8081 \
    MACHINE_ID_FILE=/etc/machine-id \
    NEBULA_CREDENTIALS_FILE=/var/lib/nebula/credentials.json \
    DOCKER_HOST=unix:///var/run/docker.sock \
    MALLOC_ARENA_MAX=1 \
    MALLOC_TRIM_THRESHOLD_=65536 \
    MALLOC_TOP_PAD_=0 \
    MALLOC_MMAP_THRESHOLD_=16384
VOLUME ["/var/lib/nebula"]
WORKDIR /app
COPY main.js main.js.map package.json THIRD_PARTY_LICENSES.txt /app/
# Modules main.js loads on first call only (dockerode's BuildKit session, the ssh:// transport).
COPY lazy /app/lazy

# Root, unlike the api and the notifier: the worker drives the host's Docker engine through its
# socket, which is root-equivalent anyway (whoever can talk to it can start a privileged container).
# A non-root user would need the docker group of the host, whose gid differs from host to host, so
# an image cannot name it. What the apps may do to the host is limited by the host policy instead
# (WORKER_ALLOW_*, see services/worker/README.md).
USER 0:0
EXPOSE 8081

# Node itself asks /health on the ops port (a slim base has no curl). 503 until it runs (it waits for
# the streams and adopts its containers first): hence the longer start period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.METRICS_PORT||8081)+'/health',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# node is PID 1, which gets no default signal handlers: runService (libs/service-kit) handles
# SIGTERM and SIGINT itself, finishes the action in flight and exits 0. The apps' containers keep
# running while the worker is stopped or replaced.
# Memory before speed for an agent that idles on every host (WORKER_RUNTIME in
# tools/src/release/plan.ts says why each; the footprint benchmark runs the bundle so): small
# young-generation semi-spaces, V8's size heuristics, no optimising tier above Sparkplug, a slowly
# growing old generation, one malloc arena trimmed back (MALLOC_* above). Idle ~77 MB resident
# instead of ~110.
ENTRYPOINT ["node", "--max-semi-space-size=1", "--optimize-for-size", "--max-opt=1", "--heap-growing-percent=10", "--flush-baseline-code", "--bytecode-old-age=2", "/app/main.js"]
