package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/partnerd/partnerd/eventstore"
)

// projectionCollector exports each projection's progress and lag, computed
// once per scrape from the same figures as GET /v1/projections.
type projectionCollector struct {
	a                                                                   *App
	head, lagEvents, lagSeconds, rebuilding, rbProgress, rbDone, rbRate *prometheus.Desc
}

func newProjectionCollector(a *App) *projectionCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"projection"}, nil)
	}
	return &projectionCollector{a: a,
		head:       d("partnerd_projection_head_position", "Position of the last event in the log, as seen when the projection's lag was measured."),
		lagEvents:  d("partnerd_projection_lag_events", "Log positions between the head and the projection's checkpoint."),
		lagSeconds: d("partnerd_projection_lag_seconds", "Age of the oldest event the projection has not applied yet (0 when caught up)."),
		rebuilding: d("partnerd_projection_rebuild_running", "1 while this process rebuilds the projection."),
		rbProgress: d("partnerd_projection_rebuild_progress_ratio", "Share of the log replayed by the running (or last) rebuild, 0 to 1."),
		rbDone:     d("partnerd_projection_rebuild_events_applied", "Events the running (or last) rebuild applied to its new generation."),
		rbRate:     d("partnerd_projection_rebuild_events_per_second", "Rate of the running (or last) rebuild."),
	}
}

func (c *projectionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.head, c.lagEvents, c.lagSeconds, c.rebuilding, c.rbProgress, c.rbDone, c.rbRate} {
		ch <- d
	}
}

func (c *projectionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, st := range c.a.projectionStatus(ctx) {
		if st.Name == "relay" {
			continue
		}
		head, _ := eventstore.ParsePosition(st.Head)
		g := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, st.Name)
		}
		g(c.head, float64(head))
		g(c.lagEvents, float64(st.LagEvents))
		g(c.lagSeconds, st.LagSeconds)
		running, progress, applied, rate := 0.0, 0.0, 0.0, 0.0
		if rb := st.Rebuild; rb != nil {
			if rb.Running {
				running = 1
			}
			progress, applied, rate = rb.Progress, float64(rb.Events), rb.EventsPerSecond
		}
		g(c.rebuilding, running)
		g(c.rbProgress, progress)
		g(c.rbDone, applied)
		g(c.rbRate, rate)
	}
}

// lagSeconds is how long ago the first event after checkpoint was recorded
// (0 when there is none).
func (a *App) lagSeconds(ctx context.Context, cp, head eventstore.Position) float64 {
	if cp >= head {
		return 0
	}
	next, err := a.Store.ReadAll(ctx, cp, 1)
	if err != nil || len(next) == 0 {
		return 0
	}
	return max(0, time.Since(next[0].RecordedAt).Seconds())
}
