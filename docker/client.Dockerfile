# geolb-client: `geolb-agent client` replicas supervised by geolb-agent (PID 1).
# Built by `make images`; configure with GEOLB_CLIENT_SERVERS (REGION=URL,...),
# GEOLB_REGION, GEOLB_REPLICAS and the other GEOLB_* variables
# (`geolb-agent client --help`).
ARG BASE=scratch
FROM ${BASE}
COPY geolb-agent /usr/local/bin/geolb-agent
COPY tmp/ /tmp/
ENV PATH=/usr/local/bin \
    GEOLB_ROLE=client \
    GEOLB_RESTART=always
LABEL org.opencontainers.image.title="geolb-client"
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/geolb-agent", "run", "--"]
CMD ["geolb-agent", "client"]
