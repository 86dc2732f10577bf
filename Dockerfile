# syntax=docker/dockerfile:1
#
# Parley's images, one target per binary:
#
#   docker build --target server    -t ghcr.io/parleychat/parley .
#   docker build --target loadtest  -t ghcr.io/parleychat/parley-loadtest .
#   docker build --target slackrecv -t ghcr.io/parleychat/parley-slackrecv .
#   docker build --target heartbeat -t ghcr.io/parleychat/parley-heartbeat .
#   docker build --target canary    -t ghcr.io/parleychat/parley-canary .
#
# The binaries are static (no cgo) and run from scratch as an unprivileged
# user: no shell, no package manager, nothing to patch but the binary.
# Health checks use `parley healthcheck`, which needs neither.

# The toolchain go.mod asks for; bump both together.
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ENV CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/parley ./server && \
    go build -trimpath -ldflags "-s -w" -o /out/loadtest ./loadtest && \
    go build -trimpath -ldflags "-s -w" -o /out/slackrecv ./alerts/slackrecv && \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/parley-canary ./canary

RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w" -o /out/heartbeat ./alerts/heartbeat

# What every runtime image holds besides its binary: CA roots for TLS to
# PostgreSQL, Sentry, OTLP collectors and staging, and a user database
# naming the unprivileged user.
FROM scratch AS base
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /usr/share/zoneinfo /usr/share/zoneinfo
COPY <<'PASSWD' /etc/passwd
nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin
PASSWD
USER 65532:65532

FROM base AS loadtest
COPY --from=build /out/loadtest /loadtest
COPY loadtest/scenarios /scenarios
ENTRYPOINT ["/loadtest"]

FROM base AS slackrecv
COPY --from=build /out/slackrecv /slackrecv
EXPOSE 8099
ENTRYPOINT ["/slackrecv"]

# The Watchdog's dead man's switch (alerts/heartbeat).
FROM base AS heartbeat
COPY --from=build /out/heartbeat /heartbeat
EXPOSE 8098
ENTRYPOINT ["/heartbeat"]

# The synthetic canary (canary/).
FROM base AS canary
COPY --from=build /out/parley-canary /parley-canary
EXPOSE 9103
ENTRYPOINT ["/parley-canary"]

# The server last: a plain `docker build .` gives the server.
FROM base AS server
COPY --from=build /out/parley /parley
EXPOSE 8080 9091
HEALTHCHECK --interval=10s --timeout=4s --start-period=10s --retries=3 CMD ["/parley", "healthcheck"]
ENTRYPOINT ["/parley"]
