package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
)

// Attribute values of the generated partners: filters then select about
// 1/4 × 1/3 × 1/2 of a program before q narrows it further.
var (
	benchCountries = []string{"DE", "FR", "IT", "ES", "NL", "US", "GB", "PL"}
	benchSizes     = domain.Sizes
	benchModels    = domain.BusinessModels
	benchSyllables = []string{"ka", "lo", "mi", "ra", "ne", "so", "tu", "vi", "ba", "de", "fo", "gu", "hi", "jo", "pe", "qu", "ri", "sa", "ti", "zo"}
)

// benchPartnerName is a pronounceable random name of 3-5 syllables and a
// suffix, so substring queries have realistic, varied selectivity.
func benchPartnerName(rng *rand.Rand) string {
	var b strings.Builder
	for range 3 + rng.IntN(3) {
		b.WriteString(benchSyllables[rng.IntN(len(benchSyllables))])
	}
	name := []byte(b.String())
	name[0] -= 'a' - 'A'
	return string(name) + []string{" Media", " Deals", " Blog", " Network", " Reviews"}[rng.IntN(5)]
}

// writePartners appends n partner.created events of program "bench" with
// varied profiles to a fresh embedded store in dir (no fsync: this is
// set-up, not the measurement).
func writePartners(dir string, n int) error {
	st, err := embedded.Open(dir, embedded.Options{NoSync: true})
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("p%07d", i)
		reach := int64(rng.IntN(1_000_000))
		prof := domain.Profile{Name: benchPartnerName(rng), URL: "https://" + id + ".example",
			Country: benchCountries[rng.IntN(len(benchCountries))], Size: benchSizes[rng.IntN(len(benchSizes))],
			BusinessModel: benchModels[rng.IntN(len(benchModels))], RelationshipType: []string{"direct", "marketplace"}[rng.IntN(2)],
			SocialReach: &reach}
		ev := domain.PartnerCreated{PartnerID: id, ProgramID: "bench", Profile: prof, ProspectStage: "new", CreatedAt: now}
		data, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		if _, err := st.Append(ctx, domain.PartnerStream("bench", id), eventstore.NoStream, []eventstore.EventData{{
			ID: uuid.NewString(), Type: ev.EventType(), Data: data, Metadata: []byte(`{"schema":1,"program":"bench"}`)}}); err != nil {
			return err
		}
	}
	return nil
}

// benchQuery: list-query latency over a program of n partners in real Redis,
// through HTTP on a partnerd started in process: three filters (two
// countries, two sizes, one relationship type) + q (a random syllable pair)
// + sort by name, first page of 50.
func benchQuery(redisURL string, n, queries int, res Results) error {
	dir, err := os.MkdirTemp("", "partnerbench-query-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := writePartners(dir, n); err != nil {
		return err
	}
	if err := flushRedis(redisURL); err != nil {
		return err
	}
	cfg := app.FromEnv(app.Defaults())
	cfg.Data, cfg.RedisURL, cfg.BootstrapProgram, cfg.BootstrapKey = dir, redisURL, "bench", "bench-key-0123456789abcdef"
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer a.Close()
	ctx := context.Background()
	start := time.Now()
	if err := a.Start(ctx); err != nil {
		return err
	}
	if _, _, err := a.Bootstrap(ctx); err != nil {
		return err
	}
	if err := a.WaitCaughtUp(ctx); err != nil {
		return err
	}
	res["query.load.partners"] = float64(n)
	res["query.load.pipeline_events_per_s"] = rate(n, time.Since(start))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.HTTP.Handler()}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String() + "/v1/programs/bench/partners?"
	client := &http.Client{}
	rng := rand.New(rand.NewPCG(3, 4))
	// timed runs n queries (after n/10 untimed ones) and returns their
	// p50, p99 and mean total.
	timed := func(n int, values func() url.Values) (p50, p99, meanTotal float64, err error) {
		var lat []time.Duration
		var matched int
		for i := 0; i < n+n/10; i++ {
			req, _ := http.NewRequest("GET", base+values().Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+cfg.BootstrapKey)
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				return 0, 0, 0, err
			}
			var page struct {
				Items []json.RawMessage `json:"items"`
				Total int               `json:"total"`
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			d := time.Since(t0)
			if err != nil || resp.StatusCode != 200 {
				return 0, 0, 0, fmt.Errorf("list query: %d %v", resp.StatusCode, err)
			}
			if i < n/10 {
				continue // warm-up
			}
			lat = append(lat, d)
			matched += page.Total
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		return ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), float64(matched) / float64(len(lat)), nil
	}
	filters := func(q url.Values) {
		c1, c2 := rng.IntN(len(benchCountries)), rng.IntN(len(benchCountries))
		q.Add("country", benchCountries[c1])
		q.Add("country", benchCountries[c2])
		q.Add("size", benchSizes[rng.IntN(len(benchSizes))])
		q.Add("size", benchSizes[rng.IntN(len(benchSizes))])
		q.Add("relationship_type", "direct")
		q.Set("sort", []string{"name", "-name", "social_reach", "-date_joined"}[rng.IntN(4)])
		q.Set("limit", "50")
	}
	syllable := func() string { return benchSyllables[rng.IntN(len(benchSyllables))] }
	p50, p99, mean, err := timed(queries, func() url.Values {
		q := url.Values{}
		filters(q)
		q.Set("q", syllable()+syllable()[:1])
		return q
	})
	if err != nil {
		return err
	}
	res["query.list_p50_ms"], res["query.list_p99_ms"], res["query.list_mean_total"] = p50, p99, mean
	// The short searches of a search box's first keystrokes, which the
	// gram registry answers by a union (alone) or a text check (filtered).
	short := []struct {
		name     string
		chars    int
		filtered bool
	}{{"q1", 1, false}, {"q2", 2, false}, {"q1_filtered", 1, true}}
	for _, sq := range short {
		// 20 of each by default (their p99 is then their worst): a
		// 1-character search matches ~60 % of the program and takes
		// ~0.15-0.2 s, and make bench must stay under 5 minutes.
		p50, p99, mean, err := timed(max(20, queries/100), func() url.Values {
			q := url.Values{}
			if sq.filtered {
				filters(q)
			} else {
				q.Set("sort", "name")
				q.Set("limit", "50")
			}
			q.Set("q", syllable()[:sq.chars])
			return q
		})
		if err != nil {
			return err
		}
		res["query."+sq.name+"_p50_ms"], res["query."+sq.name+"_p99_ms"], res["query."+sq.name+"_mean_total"] = p50, p99, mean
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
