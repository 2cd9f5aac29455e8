// Package app wires partnerd together: configuration → adapters → the
// command and query sides, the relay, the projections and the HTTP server.
// cmd/partnerd and the end-to-end tests both start it.
package app

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/partnerd/partnerd/domain"
)

// Config is every setting of API.md; each has an env variable and a flag.
type Config struct {
	Addr             string   // PARTNERD_ADDR
	Data             string   // PARTNERD_DATA
	EventStore       string   // PARTNERD_EVENTSTORE: "embedded" or esdb://… / kurrentdb://…
	RedisURL         string   // PARTNERD_REDIS_URL: empty → embedded in-process Redis
	KafkaBrokers     []string // PARTNERD_KAFKA_BROKERS: empty → in-process bus
	KafkaPartitions  int      // PARTNERD_KAFKA_PARTITIONS: partitions of topics partnerd creates
	KafkaNamespace   string   // PARTNERD_KAFKA_NAMESPACE: prefix of topic and consumer group names
	BootstrapProgram string   // PARTNERD_BOOTSTRAP_PROGRAM
	BootstrapKey     string   // PARTNERD_BOOTSTRAP_KEY
	BusPartitions    int      // PARTNERD_BUS_PARTITIONS: partitions per topic of the in-process bus
	AccessLinkSecret string   // PARTNERD_ACCESS_LINK_SECRET: HMAC key of partner access links
	AccessLinkURL    string   // PARTNERD_ACCESS_LINK_URL: base URL of the partner app's access page
	RateLimit        float64  // PARTNERD_RATE_LIMIT: requests per second per API key; 0 = no limit
	RateBurst        int      // PARTNERD_RATE_BURST: token bucket size per API key
	// ActivityMaxPerProgram caps each program's activity feed (PARTNERD_ACTIVITY_MAX_PER_PROGRAM; 0 = no cap).
	ActivityMaxPerProgram int
	// ActivityMaxAge drops feed activities that occurred longer ago, and
	// ingest refuses such an activity (PARTNERD_ACTIVITY_MAX_AGE, e.g. 2160h; 0 = keep).
	ActivityMaxAge time.Duration
	// StreamBuffer is how many activities a GET /activities/stream client may
	// fall behind before it is dropped (PARTNERD_STREAM_BUFFER, default 8192).
	StreamBuffer int
	// GCHeadroomMB lets a heap smaller than this many MiB grow to it before
	// Go collects (PARTNERD_GC_HEADROOM_MB, default 64; 0 = Go's own pacing;
	// an environment GOGC or GOMEMLIMIT also turns it off). See internal/gctune.
	GCHeadroomMB int
	// MemoryLimitMB is the soft limit of the Go runtime's memory in MiB: the
	// collector works harder to stay under it, unless the live heap needs
	// more (PARTNERD_MEMORY_LIMIT_MB, default 240; 0 = none; off with
	// GCHeadroomMB 0 or an environment GOGC or GOMEMLIMIT). See
	// internal/gctune.
	MemoryLimitMB int
}

// Defaults returns the configuration of a bare `partnerd`.
func Defaults() Config {
	return Config{Addr: ":8080", Data: "./data", EventStore: "embedded", BootstrapProgram: "demo",
		KafkaPartitions: 12, BusPartitions: 256, RateLimit: 1000, RateBurst: 2000,
		ActivityMaxPerProgram: 1_000_000, ActivityMaxAge: 90 * 24 * time.Hour, StreamBuffer: 8192, GCHeadroomMB: 64, MemoryLimitMB: 240}
}

// FromEnv overlays the PARTNERD_* environment variables on c.
func FromEnv(c Config) Config {
	str := func(name string, dst *string) {
		if v, ok := os.LookupEnv(name); ok && v != "" {
			*dst = v
		}
	}
	num := func(name string, dst *int) {
		if v, ok := os.LookupEnv(name); ok && v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				n = -1 // Validate reports it
			}
			*dst = n
		}
	}
	str("PARTNERD_ADDR", &c.Addr)
	str("PARTNERD_DATA", &c.Data)
	str("PARTNERD_EVENTSTORE", &c.EventStore)
	str("PARTNERD_REDIS_URL", &c.RedisURL)
	var brokers string
	str("PARTNERD_KAFKA_BROKERS", &brokers)
	if brokers != "" {
		c.KafkaBrokers = SplitList(brokers)
	}
	num("PARTNERD_KAFKA_PARTITIONS", &c.KafkaPartitions)
	str("PARTNERD_KAFKA_NAMESPACE", &c.KafkaNamespace)
	num("PARTNERD_BUS_PARTITIONS", &c.BusPartitions)
	if v, ok := os.LookupEnv("PARTNERD_BOOTSTRAP_PROGRAM"); ok {
		c.BootstrapProgram = v // set empty: no program, as with the flag
	}
	str("PARTNERD_BOOTSTRAP_KEY", &c.BootstrapKey)
	str("PARTNERD_ACCESS_LINK_SECRET", &c.AccessLinkSecret)
	str("PARTNERD_ACCESS_LINK_URL", &c.AccessLinkURL)
	if v, ok := os.LookupEnv("PARTNERD_RATE_LIMIT"); ok && v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			f = -1 // Validate reports it
		}
		c.RateLimit = f
	}
	num("PARTNERD_RATE_BURST", &c.RateBurst)
	num("PARTNERD_ACTIVITY_MAX_PER_PROGRAM", &c.ActivityMaxPerProgram)
	num("PARTNERD_STREAM_BUFFER", &c.StreamBuffer)
	num("PARTNERD_GC_HEADROOM_MB", &c.GCHeadroomMB)
	num("PARTNERD_MEMORY_LIMIT_MB", &c.MemoryLimitMB)
	if v, ok := os.LookupEnv("PARTNERD_ACTIVITY_MAX_AGE"); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			d = -1 // Validate reports it
		}
		c.ActivityMaxAge = d
	}
	return c
}

// SplitList splits a comma-separated list, dropping blanks.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

var kafkaNamespace = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("PARTNERD_ADDR: must not be empty"))
	}
	switch {
	case c.EventStore == "embedded":
		if c.Data == "" {
			errs = append(errs, errors.New("PARTNERD_DATA: the embedded event store needs a folder"))
		}
	case strings.HasPrefix(c.EventStore, "esdb://"), strings.HasPrefix(c.EventStore, "esdb+discover://"),
		strings.HasPrefix(c.EventStore, "kurrentdb://"), strings.HasPrefix(c.EventStore, "kurrentdb+discover://"):
	default:
		errs = append(errs, fmt.Errorf("PARTNERD_EVENTSTORE: %q is neither \"embedded\" nor an esdb:// or kurrentdb:// connection string", c.EventStore))
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			errs = append(errs, errors.New("PARTNERD_REDIS_URL: must be redis://host:port/db or rediss://…"))
		}
	}
	if c.KafkaNamespace != "" && !kafkaNamespace.MatchString(c.KafkaNamespace) {
		errs = append(errs, errors.New("PARTNERD_KAFKA_NAMESPACE: 1-100 of letters, digits, '.', '_', '-'"))
	}
	if c.KafkaPartitions < 1 || c.KafkaPartitions > 1000 {
		errs = append(errs, errors.New("PARTNERD_KAFKA_PARTITIONS: must be 1-1000"))
	}
	if c.BusPartitions < 1 || c.BusPartitions > 1024 {
		errs = append(errs, errors.New("PARTNERD_BUS_PARTITIONS: must be 1-1024"))
	}
	if c.BootstrapProgram != "" && !domain.ValidProgramID(c.BootstrapProgram) {
		errs = append(errs, errors.New("PARTNERD_BOOTSTRAP_PROGRAM: 1-40 of a-z, 0-9, '_'"))
	}
	if c.AccessLinkSecret != "" && len(c.AccessLinkSecret) < 32 {
		errs = append(errs, errors.New("PARTNERD_ACCESS_LINK_SECRET: must be at least 32 bytes"))
	}
	if c.BootstrapKey != "" && len(c.BootstrapKey) < 16 {
		errs = append(errs, errors.New("PARTNERD_BOOTSTRAP_KEY: must be at least 16 characters"))
	}
	if !(c.RateLimit >= 0 && c.RateLimit <= 1e6) {
		errs = append(errs, errors.New("PARTNERD_RATE_LIMIT: requests per second per API key, 0 (off) to 1000000"))
	}
	if c.RateLimit > 0 && (c.RateBurst < 1 || c.RateBurst > 1e6) {
		errs = append(errs, errors.New("PARTNERD_RATE_BURST: must be 1-1000000 when PARTNERD_RATE_LIMIT is on"))
	}
	if c.ActivityMaxPerProgram < 0 {
		errs = append(errs, errors.New("PARTNERD_ACTIVITY_MAX_PER_PROGRAM: must be a whole number >= 0 (0 = no cap)"))
	}
	if c.StreamBuffer < 1 || c.StreamBuffer > 1<<20 {
		errs = append(errs, errors.New("PARTNERD_STREAM_BUFFER: must be 1-1048576"))
	}
	if c.GCHeadroomMB < 0 || c.GCHeadroomMB > 1<<20 {
		errs = append(errs, errors.New("PARTNERD_GC_HEADROOM_MB: MiB, 0 (Go's own pacing) to 1048576"))
	}
	if c.MemoryLimitMB < 0 || c.MemoryLimitMB > 1<<30 {
		errs = append(errs, errors.New("PARTNERD_MEMORY_LIMIT_MB: MiB, 0 (none) to 1073741824"))
	}
	if c.ActivityMaxAge < 0 {
		errs = append(errs, errors.New("PARTNERD_ACTIVITY_MAX_AGE: must be a duration such as 2160h (0 = keep forever)"))
	}
	return errors.Join(errs...)
}
