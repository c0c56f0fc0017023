# syntax=docker/dockerfile:1
# ocpp-proxy: multi-stage build. The build stage compiles a release binary with the Swift runtime linked in
# statically; the runtime stage is Debian slim with that binary, Config/ and Rules/, run as a non-root user.
# libxml2 is what FoundationXML reads SOAP with (SOAP chargers).
ARG SWIFT_VERSION=6.3
FROM swift:${SWIFT_VERSION}-bookworm AS build
# libxml2 (SOAP) and zlib (compressed SOAP bodies), found through pkg-config.
RUN apt-get update && apt-get install -y --no-install-recommends libxml2-dev zlib1g-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Resolve dependencies in their own layer so that source changes do not fetch them again.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
RUN swift build -c release --product ocpp-proxy --static-swift-stdlib \
    && install -D "$(swift build -c release --show-bin-path)/ocpp-proxy" /out/ocpp-proxy

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl tzdata libxml2 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /opt/ocpp-proxy --shell /usr/sbin/nologin ocpp
COPY --from=build /out/ocpp-proxy /usr/local/bin/ocpp-proxy
# The default config refers to ../Rules and ../data relative to itself.
COPY Config /opt/ocpp-proxy/Config
COPY Rules /opt/ocpp-proxy/Rules
RUN install -d -o ocpp -g ocpp /opt/ocpp-proxy/data
WORKDIR /opt/ocpp-proxy
USER ocpp
# The admin endpoint listens on all interfaces inside the container so Prometheus can scrape it; publish
# port 8181 only to your monitoring network.
ENV OCPP_PROXY_ADMIN_HOST=0.0.0.0 \
    OCPP_PROXY_UPSTREAM_URL=ws://csms:9000/ocpp
# 8180: OCPP-J chargers; 8190: SOAP chargers, when the configuration has a SOAP listener; 8181: admin.
EXPOSE 8180 8190 8181
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8181/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ocpp-proxy"]
CMD ["serve", "--config", "/opt/ocpp-proxy/Config/proxy.yaml"]
