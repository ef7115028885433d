# geolb-server: nats-server supervised by geolb-agent (PID 1).
# Built by `make images` from a context it prepares (target/images/server);
# see docker/README.md. With no configuration at all it runs one standalone
# server: `docker run geolb-server`.
ARG BASE=scratch
FROM ${BASE}
# The version the container runs; every version in the context's
# nats-server/ folder is installed, so `upgrade {to: VERSION}` finds them.
# scripts/build-images.sh passes both (the default from proto/src/lib.rs).
ARG NATS_VERSION
# Every version installed (space separated), as a label for `geolb lab up --docker`.
ARG NATS_VERSIONS
COPY geolb-agent /usr/local/bin/geolb-agent
COPY nats-server/ /opt/nats-server/
COPY nats-server.conf /etc/nats/nats-server.conf
COPY tmp/ /tmp/
ENV PATH=/opt/nats-server/${NATS_VERSION}:/usr/local/bin \
    GEOLB_ROLE=server \
    GEOLB_MONITOR=http://127.0.0.1:8222 \
    GEOLB_SERVERS_DIR=/opt/nats-server \
    GEOLB_ON_TERM=drain \
    GEOLB_TERM_DRAIN_GRACE=8s
LABEL org.opencontainers.image.title="geolb-server" \
      io.nats-geolb.nats-version="${NATS_VERSION}" \
      io.nats-geolb.nats-versions="${NATS_VERSIONS}"
EXPOSE 4222 6222 7222 8222
# `docker stop` sends SIGTERM: the agent turns it into a lame-duck drain that
# ends once the clients have left, at the latest after GEOLB_TERM_DRAIN_GRACE
# (8 s, inside Docker's default 10 s stop timeout).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/geolb-agent", "run", "--"]
CMD ["nats-server", "-c", "/etc/nats/nats-server.conf"]
