// Command partnerd runs the partner-program back end and its admin tasks.
//
//	partnerd [serve]                    run the HTTP API, relay and projections
//	partnerd programs create NAME       create a program; prints its API key once
//	partnerd programs keys issue NAME   issue another key
//	partnerd programs keys list NAME    the IDs of its live keys
//	partnerd programs keys revoke NAME KEY_ID (or the key itself)
//
// Every flag has a PARTNERD_* environment equivalent (see --help).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/partnerd/partnerd/app"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args, stdout, stderr)
	case "programs":
		err = programs(args, stdout, stderr)
	case "rebuild":
		err = rebuild(args, stdout, stderr)
	case "republish":
		err = republish(args, stdout, stderr)
	case "help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "partnerd: unknown command %q\n\n", cmd)
		usage(stderr)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "partnerd: %v\n", err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "partnerd: %v\n", err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// flagError is a usage error (exit 2) for a flag that does not parse (the
// flag set already printed its usage); --help stays flag.ErrHelp (exit 0).
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err.Error()}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `partnerd — event-sourced back end for partner programs

Usage:
  partnerd [serve] [flags]                  run the HTTP API, relay and projections
  partnerd programs create NAME [flags]     create a program; prints its API key once (last line)
  partnerd programs keys issue NAME         issue another API key for a program
  partnerd programs keys list NAME          the IDs of a program's live keys
  partnerd programs keys revoke NAME KEY_ID revoke a key (by its ID, or the key itself)
  partnerd rebuild PROJECTION|all [flags]   rebuild read models into a new generation, then switch
  partnerd republish --from POS [--to POS] [--category C]
                                            publish a range of history to Kafka again (same event IDs)

Run "partnerd serve --help" for the flags and their environment variables.
With the embedded event store, run admin commands while the server is stopped
(the data folder is locked by the running server).
`)
}

// flags registers the settings of API.md on fs, defaulting to the environment.
func flags(fs *flag.FlagSet) *app.Config {
	c := app.FromEnv(app.Defaults())
	fs.StringVar(&c.Addr, "addr", c.Addr, "HTTP listen address (PARTNERD_ADDR)")
	fs.StringVar(&c.Data, "data", c.Data, "folder of the embedded event store (PARTNERD_DATA)")
	fs.StringVar(&c.EventStore, "eventstore", c.EventStore, "\"embedded\" or an esdb:// / kurrentdb:// connection string (PARTNERD_EVENTSTORE)")
	fs.StringVar(&c.RedisURL, "redis-url", c.RedisURL, "redis://host:port/db; empty = embedded in-process Redis (PARTNERD_REDIS_URL)")
	fs.Func("kafka-brokers", "comma-separated Kafka brokers; empty = in-process bus (PARTNERD_KAFKA_BROKERS)", func(s string) error {
		c.KafkaBrokers = app.SplitList(s)
		return nil
	})
	fs.StringVar(&c.KafkaNamespace, "kafka-namespace", c.KafkaNamespace, "prefix of every topic and consumer group, to share a cluster (PARTNERD_KAFKA_NAMESPACE)")
	fs.IntVar(&c.KafkaPartitions, "kafka-partitions", c.KafkaPartitions, "partitions of the topics partnerd creates (PARTNERD_KAFKA_PARTITIONS)")
	fs.IntVar(&c.BusPartitions, "bus-partitions", c.BusPartitions, "partitions per topic of the in-process bus (PARTNERD_BUS_PARTITIONS)")
	fs.StringVar(&c.BootstrapProgram, "bootstrap-program", c.BootstrapProgram, "program to create at start if missing (PARTNERD_BOOTSTRAP_PROGRAM)")
	fs.StringVar(&c.AccessLinkURL, "access-link-url", c.AccessLinkURL, "base URL of the partner app's access page (PARTNERD_ACCESS_LINK_URL; the secret only as PARTNERD_ACCESS_LINK_SECRET)")
	fs.Float64Var(&c.RateLimit, "rate-limit", c.RateLimit, "requests per second per API key, 0 = no limit (PARTNERD_RATE_LIMIT)")
	fs.IntVar(&c.RateBurst, "rate-burst", c.RateBurst, "burst size of each API key's token bucket (PARTNERD_RATE_BURST)")
	fs.IntVar(&c.ActivityMaxPerProgram, "activity-max-per-program", c.ActivityMaxPerProgram, "activities kept in each program's feed; 0 = no cap (PARTNERD_ACTIVITY_MAX_PER_PROGRAM)")
	fs.DurationVar(&c.ActivityMaxAge, "activity-max-age", c.ActivityMaxAge, "feed activities older than this (by occurred_at) are dropped, and refused at ingest; 0 = keep (PARTNERD_ACTIVITY_MAX_AGE)")
	fs.IntVar(&c.StreamBuffer, "stream-buffer", c.StreamBuffer, "activities a live stream client may fall behind before it is dropped (PARTNERD_STREAM_BUFFER)")
	fs.IntVar(&c.GCHeadroomMB, "gc-headroom-mb", c.GCHeadroomMB, "MiB a small heap may grow to before Go collects; 0 = Go's own pacing; GOGC or GOMEMLIMIT turn it off (PARTNERD_GC_HEADROOM_MB)")
	fs.IntVar(&c.MemoryLimitMB, "memory-limit-mb", c.MemoryLimitMB, "soft limit of the Go runtime's memory in MiB, unless the live heap needs more; 0 = none; GOGC or GOMEMLIMIT turn it off (PARTNERD_MEMORY_LIMIT_MB)")
	fs.StringVar(&c.BootstrapKey, "bootstrap-key", c.BootstrapKey, "API key of the bootstrap program (PARTNERD_BOOTSTRAP_KEY)")
	return &c
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func logger(stderr io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("PARTNERD_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
}

func withSignals() (context.Context, context.CancelFunc) {
	return signalContext()
}
