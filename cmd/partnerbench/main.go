// Command partnerbench measures partnerd against baselines taken in the same
// run on the same machine, so figures are ratios, not claims.
//
//	go run ./cmd/partnerbench -scenarios append,project -redis-url redis://127.0.0.1:6390/9 -json out.json
//
// Scenarios:
//
//	append   durable appends/s of the embedded store with 1 and 64 writers and
//	         events per fsync; baselines: raw fsyncs/s of the data folder's disk
//	         and plain Pebble Set+Sync from the same number of goroutines.
//	commands HTTP commands/s (create, update) with 64 connections against
//	         /healthz on the same server and client; and the lag (p50/p99)
//	         from a command's answer to its read through X-Consistency-Token.
//	kafka    relay events/s from the log into a real broker, against a plain
//	         Sarama producer sending the same records in the same run.
//	query    p50/p99 of list queries (3 filters + q + sort, first page) over
//	         HTTP at -partners partners in real Redis.
//	memory   RSS of a real partnerd process (built from this checkout) at
//	         -partners partners after ingesting -activities activities.
//	ingest   activities/s through POST /activities in batches of 1000 (embedded
//	         store, real Redis, projections running), the CPU share of HTTP
//	         decode/validation, append, projection…, and the projection's
//	         catch-up rate; baseline: encoding/json decoding the same bodies.
//	project  projection events/s into real Redis, applied directly in batches
//	         and through the whole pipeline (log → relay → bus → projection);
//	         baseline: redis-benchmark -P 64 -t set on the same Redis, and the
//	         Redis commands issued per event.
//	rebuild  full rebuild of the partners projection from a log of -rebuild-events
//	         partner events into real Redis (events/s, replay only); baseline:
//	         redis-benchmark -P 64 -t set on the same Redis.
//	segments one program, -partners partners (default 100k) and 200 segments
//	         in real Redis: p50/p99 of a partner change reflected in every
//	         affected segment, and of recomputing one segment over every
//	         partner; baselines: a PING round trip and reading every
//	         partner's facts (HGETALL) in the same run.
//
// The JSON output is one object; its keys are stable (see README.md here).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/internal/gctune"
)

// allScenarios is what -scenarios all runs, in this order.
var allScenarios = []string{"append", "project", "rebuild", "commands", "query", "ingest", "memory", "segments", "kafka"}

// Results maps stable metric names to values.
type Results map[string]float64

func main() {
	scen := flag.String("scenarios", "all", "comma-separated scenarios to run, or all ("+strings.Join(allScenarios, ",")+"; kafka only with -kafka-brokers)")
	jsonOut := flag.String("json", "", "also write the figures as one JSON object to this file")
	dir := flag.String("dir", "", "data folder for the append scenario (default: a temporary folder)")
	redisURL := flag.String("redis-url", os.Getenv("PARTNERD_BENCH_REDIS_URL"), "real Redis for the project scenario (its database is flushed!)")
	events := flag.Int("events", 200000, "events for the project and kafka scenarios")
	rebuildBaseline := flag.Bool("rebuild-baseline", true, "also replay the rebuild scenario's log through the guarded path (slow)")
	rebuildEvents := flag.Int("rebuild-events", 50000, "partner events in the log the rebuild scenario rebuilds (1000000 for the issue's figure)")
	rebuildPartners := flag.Int("rebuild-partners", 0, "partners of the rebuild scenario's log, each living a contract lifecycle (0: events/4 partners, created then three profile updates each)")
	ingestActivities := flag.Int("ingest-activities", 300000, "activities for the ingest scenario (sent in batches of 1000)")
	appends := flag.Int("appends", 20000, "appends per writer-count in the append scenario")
	kafkaBrokers := flag.String("kafka-brokers", os.Getenv("PARTNERD_BENCH_KAFKA_BROKERS"), "a real Kafka broker for the kafka scenario")
	partners := flag.Int("partners", 100000, "partners in the program of the query, memory and segments scenarios")
	activities := flag.Int("activities", 1000000, "activities ingested before the memory scenario reads partnerd's RSS")
	queries := flag.Int("queries", 2000, "list queries timed by the query scenario")
	duration := flag.Duration("duration", 5*time.Second, "how long each load phase of the commands scenario runs")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	memprofile := flag.String("memprofile", "", "write an allocation profile of the whole run to this file at the end")
	flag.StringVar(&rebuildLogDir, "rebuild-log-dir", "", "keep the rebuild scenario's log in this (new or empty) folder, e.g. to time `partnerd rebuild partners --data DIR` on it")
	flag.StringVar(&rebuildProfile, "cpuprofile-rebuild", "", "write a CPU profile of the rebuild scenario's rebuild (not the filling of its log) to this file")
	flag.StringVar(&createsTrace, "trace-creates", "", "write a 2 s execution trace of the commands scenario's create phase to this file (go tool trace -pprof=sched FILE shows where goroutines waited for a CPU)")
	flag.StringVar(&createsProfile, "cpuprofile-creates", "", "write a CPU profile of the commands scenario's create phase (until the projections caught up) to this file")
	flag.Parse()
	// The in-process servers collect as a partnerd process would
	// (PARTNERD_GC_HEADROOM_MB; GOGC or GOMEMLIMIT turn it off).
	cfg := app.FromEnv(app.Defaults())
	gctune.Start(cfg.GCHeadroomMB, cfg.MemoryLimitMB)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "partnerbench:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *memprofile != "" {
		defer func() {
			if f, err := os.Create(*memprofile); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}

	res := Results{}
	meta, cpuStart := machineMeta(time.Now()), readCPUTimes()
	list := strings.Split(*scen, ",")
	if *scen == "all" {
		list = nil
		for _, s := range allScenarios {
			if s == "kafka" && *kafkaBrokers == "" {
				fmt.Fprintln(os.Stderr, "partnerbench: kafka: skipped (no -kafka-brokers)")
				continue
			}
			list = append(list, s)
		}
	}
	for _, s := range list {
		fmt.Fprintf(os.Stderr, "partnerbench: %s…\n", s)
		began := time.Now()
		var err error
		name := strings.TrimSpace(s)
		if *redisURL == "" && name != "append" && name != "kafka" && slices.Contains(allScenarios, name) {
			fmt.Fprintf(os.Stderr, "partnerbench: %s: needs -redis-url (or PARTNERD_BENCH_REDIS_URL): a real Redis whose database may be flushed\n", s)
			os.Exit(1)
		}
		switch name {
		case "append":
			err = benchAppend(*dir, *appends, res)
		case "commands":
			err = benchCommands(*redisURL, *duration, res)
		case "kafka":
			if len(*kafkaBrokers) == 0 {
				err = fmt.Errorf("needs -kafka-brokers (or PARTNERD_BENCH_KAFKA_BROKERS)")
			} else {
				err = benchKafka(app.SplitList(*kafkaBrokers), *events, res)
			}
		case "query":
			err = benchQuery(*redisURL, *partners, *queries, res)
		case "memory":
			err = benchMemory(*redisURL, *partners, *activities, res)
		case "rebuild":
			err = benchRebuild(*redisURL, *rebuildEvents, *rebuildPartners, *rebuildBaseline, res)
		case "ingest":
			err = benchIngest(*redisURL, *ingestActivities, res)
		case "project":
			err = benchProject(*redisURL, *events, res)
		case "segments":
			err = benchSegments(*redisURL, *partners, res)
		default:
			err = fmt.Errorf("unknown scenario")
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "partnerbench: %s: %v\n", s, err)
			pprof.StopCPUProfile()
			os.Exit(1)
		}
		took := time.Since(began)
		res[strings.TrimSpace(s)+".scenario_seconds"] = took.Seconds()
		fmt.Fprintf(os.Stderr, "partnerbench: %s took %s\n", s, took.Round(100*time.Millisecond))
	}
	finishMeta(meta, cpuStart)
	fmt.Println(machineLine(meta))
	printTable(res)
	if *jsonOut != "" {
		out := map[string]any{"meta": meta, "results": res}
		raw, _ := json.MarshalIndent(out, "", "  ")
		if err := os.WriteFile(*jsonOut, raw, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "partnerbench:", err)
			os.Exit(1)
		}
	}
}

func printTable(r Results) {
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Printf("%-48s %14s\n", "metric", "value")
	for _, k := range keys {
		fmt.Printf("%-48s %14.2f\n", k, r[k])
	}
}

// startCPUProfile profiles the process into path until stop is called
// (stop may be called again; with an empty path both do nothing).
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { pprof.StopCPUProfile(); f.Close() }) }, nil
}

// startTrace writes an execution trace to path for d (nothing when path
// is empty).
func startTrace(path string, d time.Duration) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := trace.Start(f); err != nil {
		f.Close()
		return err
	}
	time.AfterFunc(d, func() { trace.Stop(); f.Close() })
	return nil
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }
