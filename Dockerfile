# The fedgate image the Helm chart runs: `fedgate gateway` or `fedgate bridge <name>`. Node 24, an LTS line
# supported until 2028 (Node 20 is past its end of life; @nats-io/nuid asks for 22 or later).
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY schemas schemas
COPY gateway gateway
COPY bridges bridges
# What ships is the build output and the JSON beside it (the contract's schemas, each bridge's config schema).
RUN npm run build && npm prune --omit=dev && find schemas bridges -name '*.ts' -delete

FROM node:24-bookworm-slim
ENV NODE_ENV=production
# A larger young generation: an event's objects live for its NATS round trips, and with the default 16 MiB
# they outlived the scavenges and were copied; the core spent a quarter of its busy time collecting them.
# `npm run bench` runs its processes with these variables (bench/processes.ts reads them from here).
ENV NODE_OPTIONS=--max-semi-space-size=64
WORKDIR /opt/fedgate
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/dist dist
COPY --from=build /src/schemas schemas
# Each bridge validates its own config section against the schema in its folder.
COPY --from=build /src/bridges bridges
RUN ln -s /opt/fedgate/dist/gateway/cli/main.js /usr/local/bin/fedgate && chmod +x dist/gateway/cli/main.js
# UID 1000 is the image's node user; the chart runs as it with a read-only root filesystem.
USER 1000
ENTRYPOINT ["fedgate"]
CMD ["--help"]
