package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/internal/gctune"
	"github.com/partnerd/partnerd/projections"
)

func rebuild(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rebuild", stderr)
	cfg := flags(fs)
	var target string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		target, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if target == "" && fs.NArg() == 1 {
		target = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("rebuild: one projection (or all), got also %q", fs.Args())}
	}
	var names []string
	for _, p := range app.ProjectionsFor(*cfg) {
		names = append(names, p.Name())
	}
	if target == "" {
		return usageError{"rebuild: name a projection (" + strings.Join(names, ", ") + ") or all"}
	}
	var todo []projections.Projection
	for _, p := range app.ProjectionsFor(*cfg) {
		if target == "all" || target == p.Name() {
			todo = append(todo, p)
		}
	}
	if len(todo) == 0 {
		return usageError{fmt.Sprintf("rebuild: unknown projection %q (have %s)", target, strings.Join(names, ", "))}
	}
	store, err := app.OpenStore(*cfg)
	if err != nil {
		return fmt.Errorf("%w (with the embedded store, stop the server or POST /v1/projections/{name}/rebuild to it)", err)
	}
	defer store.Close()
	if cfg.RedisURL == "" {
		// The embedded Redis lives inside a server and starts empty: the
		// next start rebuilds every read model from the log, so there is
		// nothing to rebuild out here (the log opened: no server holds it).
		for _, p := range todo {
			fmt.Fprintf(stdout, "%s: nothing to rebuild: with the embedded Redis (PARTNERD_REDIS_URL unset) partnerd rebuilds it from the log when it starts; "+
				"to rebuild a running server's, POST /v1/projections/%s/rebuild\n", p.Name(), p.Name())
		}
		return nil
	}
	rdb, _, err := app.OpenRedis(*cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ctx, stop := withSignals()
	defer stop()
	defer gctune.Start(cfg.GCHeadroomMB, cfg.MemoryLimitMB)()
	for _, p := range app.WithSegmentRestorer(todo, rdb, store, slog.New(slog.NewTextHandler(stderr, nil))) {
		bar := newProgressBar(stderr, p.Name())
		res, err := projections.Rebuild(ctx, rdb, store, p, bar.update)
		bar.finish()
		if err != nil {
			return err
		}
		if res.OldGeneration == 0 {
			fmt.Fprintf(stdout, "%s: generation %d (Redis had none), %d events in %s\n", p.Name(), res.NewGeneration, res.Events, res.Duration.Round(time.Millisecond))
			continue
		}
		fmt.Fprintf(stdout, "%s: generation %d -> %d, %d events in %s\n", p.Name(), res.OldGeneration, res.NewGeneration, res.Events, res.Duration.Round(time.Millisecond))
	}
	return nil
}

// progressBar draws "name [####    ] done/total rate ETA" on one line.
type progressBar struct {
	w     io.Writer
	name  string
	start time.Time
	last  time.Time
}

func newProgressBar(w io.Writer, name string) *progressBar {
	return &progressBar{w: w, name: name, start: time.Now()}
}

func (b *progressBar) update(done, total eventstore.Position, applied uint64) {
	now := time.Now()
	if now.Sub(b.last) < 100*time.Millisecond && done < total {
		return
	}
	b.last = now
	frac := 1.0
	if total > 0 {
		frac = min(1, float64(done)/float64(total))
	}
	const width = 30
	filled := int(frac * width)
	elapsed := now.Sub(b.start).Seconds()
	rate := float64(applied) / max(elapsed, 1e-9)
	eta := "?"
	if frac > 0 {
		eta = time.Duration(elapsed * (1 - frac) / frac * float64(time.Second)).Round(time.Second).String()
	}
	fmt.Fprintf(b.w, "\r%s [%s%s] %d/%d  %.0f events/s  ETA %s ", b.name, strings.Repeat("#", filled), strings.Repeat(" ", width-filled), done, total, rate, eta)
}

func (b *progressBar) finish() { fmt.Fprintln(b.w) }
