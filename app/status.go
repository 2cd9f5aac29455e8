package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/httpapi"
	"github.com/partnerd/partnerd/projections"
)

// lagTracker samples the log head every second, so readiness can ask "did
// the projections reach where the log was 10 s ago?".
type lagTracker struct {
	mu      sync.Mutex
	samples []sample
}

type sample struct {
	at   time.Time
	head eventstore.Position
}

func newLagTracker() *lagTracker { return &lagTracker{} }

func (l *lagTracker) run(ctx context.Context, store eventstore.Store) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if h, err := store.Head(ctx); err == nil {
			l.mu.Lock()
			l.samples = append(l.samples, sample{at: time.Now(), head: h})
			if len(l.samples) > 12 {
				l.samples = l.samples[1:]
			}
			l.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// headAgo is the log head as it was about d ago (or the oldest sample).
func (l *lagTracker) headAgo(d time.Duration) (eventstore.Position, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cut := time.Now().Add(-d)
	var best eventstore.Position
	found := false
	for _, s := range l.samples {
		if s.at.After(cut) {
			break
		}
		best, found = s.head, true
	}
	return best, found
}

// handledTracker is the Kafka bus (bus.Kafka.Handled).
type handledTracker interface {
	Handled(group, topic string, msg *message.Message)
}

// handler is r's handler of topic. With Kafka it tells the bus what r
// handled, so the checkpoints count a message as done as soon as it is,
// not a commit interval later.
func (a *App) handler(r *projections.Runner, topic string) message.NoPublishHandlerFunc {
	t, ok := a.Bus.(handledTracker)
	if !ok {
		return r.Handle
	}
	group := projectionGroup(r)
	return func(msg *message.Message) error {
		if err := r.Handle(msg); err != nil {
			return err
		}
		t.Handled(group, topic, msg)
		return nil
	}
}

// checkpoint of a projection: every event up to it has been applied.
func (a *App) checkpoint(ctx context.Context, i int) eventstore.Position {
	return a.checkpoints(ctx)[i]
}

// backlogger is the Kafka bus (bus.Kafka.Backlog).
type backlogger interface {
	Backlog(ctx context.Context, group string, topics []string) (int64, error)
}

// backlogs keeps the checkpoints read from Kafka for a second: status,
// readiness and metrics ask often, and each answer asks the broker about
// every partition of every projection's topics.
type backlogs struct {
	mu  sync.Mutex
	at  time.Time
	cps []eventstore.Position
	err error
}

// checkpoints is checkpoint of every runner. With the in-process bus a
// publish returns only once every projection applied it, so the relay's
// position is theirs too (or a runner's own, when it is ahead). With Kafka
// the relay's position says only what the broker holds, and a runner's
// furthest event only what its own partitions reached: a projection's
// checkpoint is then the relay's position less the messages its consumer
// group has still to handle in all partitions (the relay's position when
// none is left; 0 when Kafka cannot tell, checkpointErr says why).
func (a *App) checkpoints(ctx context.Context) []eventstore.Position {
	return a.checkpointsWithin(ctx, time.Second)
}

// checkpointsWithin is checkpoints read from Kafka at most maxAge ago.
func (a *App) checkpointsWithin(ctx context.Context, maxAge time.Duration) []eventstore.Position {
	bl, kafka := a.Bus.(backlogger)
	if !kafka {
		pub := a.published(ctx)
		out := make([]eventstore.Position, len(a.Runners))
		for i, r := range a.Runners {
			out[i] = max(r.Checkpoint(), pub)
		}
		return out
	}
	a.backlogs.mu.Lock()
	defer a.backlogs.mu.Unlock()
	if a.backlogs.cps != nil && time.Since(a.backlogs.at) < maxAge {
		return a.backlogs.cps
	}
	pub := a.published(ctx)
	out := make([]eventstore.Position, len(a.Runners))
	var errs error
	for i, r := range a.Runners {
		pending, err := bl.Backlog(ctx, projectionGroup(r), r.Projection().Topics())
		if err != nil {
			errs = errors.Join(errs, fmt.Errorf("%s: %w", r.Projection().Name(), err))
			continue
		}
		out[i] = pub - min(pub, eventstore.Position(pending))
	}
	a.backlogs.at, a.backlogs.cps, a.backlogs.err = time.Now(), out, errs
	return out
}

// checkpointErr is why the last checkpoints read from Kafka are unknown.
func (a *App) checkpointErr() error {
	a.backlogs.mu.Lock()
	defer a.backlogs.mu.Unlock()
	return a.backlogs.err
}

// projectionGroup is the consumer group of a projection's bus subscriber.
func projectionGroup(r *projections.Runner) string {
	return "partnerd.projection." + r.Projection().Name()
}

func (a *App) ready(ctx context.Context) []httpapi.Check {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var checks []httpapi.Check
	_, err := a.Store.Head(ctx)
	checks = append(checks, httpapi.Check{Name: "eventstore", Err: err})
	checks = append(checks, httpapi.Check{Name: "redis", Err: a.Redis.Ping(ctx).Err()})
	if p, ok := a.Bus.(interface{ Ping(context.Context) error }); ok {
		checks = append(checks, httpapi.Check{Name: "bus", Err: p.Ping(ctx)})
	}
	var lagErr error
	// Caught up to within 10 s: where the log was 10 s ago; before this
	// process has watched it that long, where it was at start (a restart
	// on a long log is not ready until its read models hold that log).
	past, ok := a.lag.headAgo(10 * time.Second)
	what := "10 s ago"
	if !ok {
		past, what = eventstore.Position(a.startHead.Load()), "when partnerd started"
	}
	cps := a.checkpoints(ctx)
	if err := a.checkpointErr(); err != nil { // Kafka only
		lagErr = fmt.Errorf("reading the projections' progress from Kafka: %w", err)
	}
	for i, r := range a.Runners {
		if cp := cps[i]; cp < past {
			lagErr = errors.Join(lagErr, fmt.Errorf("%s at %d, log was at %d %s", r.Projection().Name(), cp, past, what))
		}
	}
	if a.recovering.Load() {
		lagErr = errors.Join(lagErr, errors.New("redis lost the read models; rebuilding them from the log"))
	} else if n, err := a.Redis.Exists(ctx, EpochKey).Result(); err == nil && n == 0 {
		// Lost, and not noticed yet (watchEpoch looks every second): not
		// ready from the moment it happened, however fast the rebuild.
		lagErr = errors.Join(lagErr, errors.New("redis lost the read models; they are about to be rebuilt from the log"))
	}
	checks = append(checks, httpapi.Check{Name: "projections", Err: lagErr})
	return checks
}

func (a *App) projectionStatus(ctx context.Context) []httpapi.ProjectionStatus {
	head, _ := a.Store.Head(ctx)
	out := make([]httpapi.ProjectionStatus, 0, len(a.Runners)+1)
	pub := a.published(ctx)
	out = append(out, httpapi.ProjectionStatus{Name: "relay", Checkpoint: pub.String(), Head: head.String(),
		LagEvents: uint64(head - min(head, pub)), Applied: a.Relay.Published(), LagSeconds: a.lagSeconds(ctx, pub, head)})
	cps := a.checkpoints(ctx)
	for i, r := range a.Runners {
		cp := cps[i]
		st := httpapi.ProjectionStatus{Name: r.Projection().Name(), Generation: r.Generation(),
			Checkpoint: cp.String(), Head: head.String(), LagEvents: uint64(head - min(head, cp)), Applied: r.Applied(),
			LagSeconds: a.lagSeconds(ctx, cp, head)}
		a.rebuildStatus(st.Name, &st)
		out = append(out, st)
	}
	return out
}

func (a *App) registerMetrics() {
	reg := a.Registry
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "partnerd_log_head_position", Help: "Position of the last event in the log."},
		func() float64 { h, _ := a.Store.Head(context.Background()); return float64(h) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "partnerd_relay_position", Help: "Last position the relay published and checkpointed."},
		func() float64 { return float64(a.Relay.Position()) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "partnerd_relay_published_total", Help: "Messages published by the relay in this process."},
		func() float64 { return float64(a.Relay.Published()) }))
	for i, r := range a.Runners {
		labels := prometheus.Labels{"projection": r.Projection().Name()}
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "partnerd_projection_checkpoint", Help: "Log position a projection has applied up to.", ConstLabels: labels},
			func() float64 { return float64(a.checkpoint(context.Background(), i)) }))
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "partnerd_projection_applied_total", Help: "Events applied (not skipped) by a projection in this process.", ConstLabels: labels},
			func() float64 { return float64(r.Applied()) }))
	}
	reg.MustRegister(newProjectionCollector(a))
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
}

// startingUp reports whether the projections have not yet reached the log
// as it was when partnerd started: with the embedded Redis, which starts
// empty, the read models (API keys among them) are still being built from
// the log, so an unknown key may be a valid one not projected yet (503,
// not 401). Once they reached it, it stays false.
func (a *App) startingUp(ctx context.Context) bool {
	if a.caughtUp.Load() {
		return false
	}
	start := eventstore.Position(a.startHead.Load())
	// Asked by every query until it is false: with Kafka, a tenth of a
	// second old at most, so the first query after the catch-up is served.
	for _, cp := range a.checkpointsWithin(ctx, 100*time.Millisecond) {
		if cp < start {
			return true
		}
	}
	a.caughtUp.Store(true)
	return false
}
