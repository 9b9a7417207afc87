# The Shoal image: `shoald` (the node daemon, manager or worker) and `shoal` (the CLI).
#
#   docker build -t shoal/shoal:dev .                      with a registry (node:20-bookworm-slim)
#   scripts/build-images.sh                                offline: builds shoal/node-base:20 from
#                                                          the host's Node, pre-fetches npm's cache,
#                                                          builds this with BASE_IMAGE and NPM_FLAGS
#
# Run it with docker-compose.yml (three managers, two workers; see the README), or by hand:
# docker/entrypoint.sh documents the SHOAL_* variables. The daemon runs as the user `shoal`
# (uid 10001); the entrypoint starts as root only to give that user the Docker socket's group.
ARG BASE_IMAGE=node:20-bookworm-slim

# ---- build: every dependency, compile, then keep only the production ones -------------------
FROM ${BASE_IMAGE} AS build
LABEL org.shoal.image=shoal-build
WORKDIR /src
# --offline with the cache scripts/build-images.sh fills in docker/npm-cache; empty: online.
ARG NPM_FLAGS=
COPY docker/npm-cache/ /tmp/npm-cache/
COPY package.json package-lock.json tsconfig.base.json ./
COPY packages/ packages/
RUN npm ci --cache /tmp/npm-cache --no-audit --no-fund --loglevel=error $NPM_FLAGS
COPY proto/ proto/
# The dashboard's page (shoald --ui-addr) is bundled into packages/daemon/dist/web, kept below.
COPY scripts/bundle-ui.mjs scripts/
RUN npx tsc -b packages/daemon packages/cli \
 && node scripts/bundle-ui.mjs \
 && npm prune --omit=dev --cache /tmp/npm-cache --no-audit --no-fund --loglevel=error $NPM_FLAGS \
 && mkdir -p /out \
 && cp -a package.json node_modules proto /out/ \
 && for p in packages/*; do \
      mkdir -p "/out/$p" && cp -a "$p/package.json" "/out/$p/"; \
      for d in bin node_modules; do if [ -d "$p/$d" ]; then cp -a "$p/$d" "/out/$p/"; fi; done; \
      if [ -d "$p/dist/src" ]; then mkdir -p "/out/$p/dist" && cp -a "$p/dist/src" "/out/$p/dist/"; fi; \
      if [ -d "$p/dist/web" ]; then cp -a "$p/dist/web" "/out/$p/dist/"; fi; \
    done \
 && find /out/packages \( -name '*.map' -o -name '*.d.ts' \) -exec rm -f {} +

# ---- runtime ---------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
LABEL org.shoal.image=shoal
ENV NODE_ENV=production \
    SHOAL_DATA_DIR=/var/lib/shoal \
    SHOAL_TOKEN_DIR=/var/lib/shoal-bootstrap \
    SHOAL_HOST=unix:///var/lib/shoal/control.sock
RUN echo 'shoal:x:10001:10001:Shoal:/var/lib/shoal:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'shoal:x:10001:' >>/etc/group \
 && mkdir -p /var/lib/shoal /var/lib/shoal-bootstrap \
 && chown 10001:10001 /var/lib/shoal /var/lib/shoal-bootstrap \
 && chmod 700 /var/lib/shoal
COPY --from=build /out/ /opt/shoal/
COPY docker/entrypoint.sh /usr/local/bin/shoal-entrypoint
COPY docker/healthcheck.sh /usr/local/bin/shoal-healthcheck
RUN ln -s /opt/shoal/packages/daemon/bin/shoald.js /usr/local/bin/shoald \
 && ln -s /opt/shoal/packages/cli/bin/shoal.js /usr/local/bin/shoal \
 && chmod 755 /usr/local/bin/shoal-entrypoint /usr/local/bin/shoal-healthcheck \
 && node -e "require('/opt/shoal/node_modules/classic-level')" \
 && shoald --help >/dev/null && shoal --help >/dev/null
WORKDIR /var/lib/shoal
VOLUME ["/var/lib/shoal"]
# Raft, the dispatcher, joining and the control API, all on one gRPC port.
EXPOSE 4242
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["shoal-healthcheck"]
ENTRYPOINT ["shoal-entrypoint"]
