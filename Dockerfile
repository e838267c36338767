# Breakwater: node dist/cli.js serve. Build with `docker compose build` or `docker build -t breakwater .`
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm install, not npm ci: the lockfile cannot list the other platforms' optional packages (see .ci/run).
RUN npm install --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
# the console's sources, bundled by `npm run build` into dist/console-assets
COPY console ./console
RUN npm run build && npm prune --omit=dev

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# migrations are read from schema/clickhouse next to dist/
COPY schema ./schema
# served at GET /runbooks on the API port, where the alert rules' runbook_url points
COPY docs/runbooks.md ./docs/runbooks.md
USER node
# OTLP/HTTP (/v1/traces) and the API (/graphql, /healthz, /readyz, /metrics, /runbooks)
EXPOSE 4318 4000
# Listening beyond loopback needs API tokens in the policy file (see deploy/breakwater/breakwater.yaml).
# A young generation of 64 MB semi-spaces, and no memory reducer: see "Node flags" in the README.
CMD ["node", "--max-semi-space-size=64", "--no-memory-reducer", "dist/cli.js", "serve", "--host", "0.0.0.0"]
