# A `shoal lab` node: Debian 12 with its own Docker engine (shoal/lab-base, scripts/build-lab-base.sh)
# plus Node 20 and the built Shoal, both taken from the Shoal image (scripts/build-images.sh), so
# a lab node runs exactly what the compose deployment runs. Built by scripts/build-lab-image.sh.
ARG LAB_BASE=shoal/lab-base:12
ARG SHOAL_IMAGE=shoal/shoal:dev
FROM ${SHOAL_IMAGE} AS shoal

FROM ${LAB_BASE}
LABEL org.shoal.image=shoal-lab-node
# Debian 12's own nodejs is 18: the Shoal image's Node 20 runtime (glibc and libstdc++ are Debian's).
COPY --from=shoal /usr/local/bin/node /usr/local/bin/node
COPY --from=shoal /opt/shoal/ /opt/shoal/
# The node boots as a compose node does (docker/entrypoint.sh: init, join with a token, or run
# when its data directory holds a node), once its own engine answers (lab-node-entrypoint.sh).
COPY docker/entrypoint.sh /usr/local/bin/shoal-entrypoint
COPY docker/lab-node-entrypoint.sh /usr/local/bin/lab-node
# The lab's registry runs from this image too (`docker-registry serve` this file, packages/lab).
COPY docker/lab-registry.yml /etc/shoal/lab-registry.yml
RUN echo 'shoal:x:10001:10001:Shoal:/var/lib/shoal:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'shoal:x:10001:' >>/etc/group \
 && ln -s /opt/shoal/packages/daemon/bin/shoald.js /usr/local/bin/shoald \
 && ln -s /opt/shoal/packages/cli/bin/shoal.js /usr/local/bin/shoal \
 && chmod 755 /usr/local/bin/lab-node /usr/local/bin/shoal-entrypoint \
 && node -e "require('/opt/shoal/node_modules/classic-level')" \
 && shoald --version >/dev/null && shoal --version >/dev/null
ENV SHOAL_DATA_DIR=/var/lib/shoal \
    SHOAL_TOKEN_DIR=/var/lib/shoal-bootstrap \
    SHOAL_HOST=unix:///var/lib/shoal/control.sock
# The node's engine keeps its images and containers here (a volume per node: they survive a
# `lab stop`/`lab start`, as a real host's disk does).
VOLUME ["/var/lib/docker", "/var/lib/shoal"]
ENTRYPOINT ["lab-node"]
