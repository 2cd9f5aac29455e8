# partnerd: docker build -t partnerd . && docker run -p 8080:8080 partnerd
# (settings: the PARTNERD_* variables in API.md; docker-compose.yml runs it
# with KurrentDB, Redis and Kafka).

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Pure Go build (Pebble then uses its Go zstd), so the binary is static.
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /partnerd ./cmd/partnerd

FROM debian:bookworm-slim
RUN apt-get update \
	&& apt-get install -y --no-install-recommends ca-certificates \
	&& rm -rf /var/lib/apt/lists/* \
	&& useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin partnerd \
	&& mkdir -p /data \
	&& chown partnerd:partnerd /data
COPY --from=build /partnerd /usr/local/bin/partnerd
ENV PARTNERD_DATA=/data \
	PARTNERD_ADDR=:8080
VOLUME /data
EXPOSE 8080
USER partnerd
ENTRYPOINT ["/usr/local/bin/partnerd"]
CMD ["serve"]
