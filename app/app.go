package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/commands"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/eventstore/kurrentdb"
	"github.com/partnerd/partnerd/httpapi"
	"github.com/partnerd/partnerd/internal/idemstore"
	"github.com/partnerd/partnerd/projections"
	"github.com/partnerd/partnerd/queries"
	"github.com/partnerd/partnerd/relay"
)

// Bus is a Watermill publisher plus a way to get a subscriber per consumer
// group (one group per projection).
type Bus interface {
	message.Publisher
	NewSubscriber(group string) (message.Subscriber, error)
}

// App is a wired partnerd.
type App struct {
	Config   Config
	Logger   *slog.Logger
	Store    eventstore.Store
	Redis    redis.UniversalClient
	Bus      Bus
	Commands *commands.Commands
	Queries  *queries.Queries
	Hub      *queries.ActivityHub
	Runners  []*projections.Runner
	Relay    *relay.Relay
	Lease    *relay.Lease
	HTTP     *httpapi.Server
	Registry *prometheus.Registry

	mini   *miniredis.Miniredis
	idem   *idemstore.Disk // idempotency records, with the embedded Redis
	ctx    context.Context
	rb     rebuilds
	router *message.Router
	lag    *lagTracker
	// backlogs: the projections' checkpoints read from Kafka (status.go).
	backlogs backlogs
	epoch    string // see EpochKey
	// recovering is set while the read models are rebuilt after Redis lost its data.
	recovering atomic.Bool
	// startHead is the log head when Start began; caughtUp is set once
	// every projection reached it (see startingUp).
	startHead atomic.Uint64
	caughtUp  atomic.Bool
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closed    sync.Once
}

// OpenStore opens the configured event store.
func OpenStore(c Config) (eventstore.Store, error) {
	if c.EventStore == "embedded" {
		return embedded.Open(c.Data, embedded.Options{})
	}
	return kurrentdb.Open(c.EventStore)
}

// IdempotencyDir is the folder under the data folder that keeps
// idempotency records when Redis is the embedded one.
const IdempotencyDir = "idempotency"

// OpenRedis connects to the configured Redis, or starts the embedded one
// (returned so it can be closed).
func OpenRedis(c Config) (redis.UniversalClient, *miniredis.Miniredis, error) {
	if c.RedisURL == "" {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, nil, fmt.Errorf("start embedded Redis: %w", err)
		}
		return redis.NewClient(&redis.Options{Addr: m.Addr(), DisableIdentity: true}), m, nil
	}
	opt, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("PARTNERD_REDIS_URL: %w", err)
	}
	opt.DisableIdentity = true // Redis 7.0 does not know CLIENT SETINFO
	if opt.PoolSize == 0 {
		// go-redis defaults to 10 per CPU; HTTP handlers, projection
		// batches and read-your-writes waits all hold connections at once.
		opt.PoolSize = 128
	}
	return redis.NewClient(opt), nil, nil
}

// New opens every adapter and wires the application; Start runs it.
func New(c Config, logger *slog.Logger) (*App, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	a := &App{Config: c, Logger: logger, Registry: prometheus.NewRegistry(), rb: rebuilds{running: map[string]*rebuildState{}}}
	var err error
	if a.Store, err = OpenStore(c); err != nil {
		return nil, err
	}
	if a.Redis, a.mini, err = OpenRedis(c); err != nil {
		_ = a.Store.Close()
		return nil, err
	}
	wmLogger := newWatermillLogger(logger)
	if len(c.KafkaBrokers) > 0 {
		a.Bus, err = newKafkaBus(c, wmLogger)
		if err != nil {
			a.Close()
			return nil, err
		}
	} else {
		a.Bus = bus.NewInProcess(c.BusPartitions, wmLogger)
	}
	if c.AccessLinkSecret == "" {
		logger.Warn("PARTNERD_ACCESS_LINK_SECRET is not set: partner access links use a random per-process key and die on restart")
	}
	a.Queries = queries.New(a.Redis, a.Store, a)
	a.Hub = queries.NewActivityHub(a.Queries, logger)
	deps := commands.Deps{Store: a.Store, AccessLinkSecret: []byte(c.AccessLinkSecret), AccessLinkURL: c.AccessLinkURL, Partners: a.Queries,
		ActivityMaxAge: c.ActivityMaxAge}
	// Partner snapshots live in the event store, beside the log (both
	// adapters have them); a store without them folds every stream in full.
	if snaps, ok := a.Store.(eventstore.Snapshotter); ok {
		deps.Snapshots = snaps
	}
	a.Commands = commands.New(deps)
	for _, p := range WithSegmentRestorer(ProjectionsFor(c), a.Redis, a.Store, logger) {
		r := projections.NewRunner(a.Redis, p)
		r.Logger = logger
		r.Log = a.Store // LogOrdered projections apply the log in its order
		a.Runners = append(a.Runners, r)
	}
	if r := a.runner(projections.Programs{}.Name()); r != nil {
		// API keys change only through the programs projection: what it
		// applied (and the generation it applies into) versions the
		// queries' key cache.
		a.Queries.KeysVersion = func() uint64 { return r.Applied() + uint64(r.Generation())<<40 }
	}
	a.Relay = &relay.Relay{Store: a.Store, Publisher: a.Bus, Checkpoints: relay.RedisCheckpoints{Client: a.Redis}, Logger: logger}
	a.Lease = &relay.Lease{Client: a.Redis, Logger: logger}
	a.lag = newLagTracker()
	var idem httpapi.IdempotencyStore // nil: in Redis
	if a.mini != nil {
		// The embedded Redis starts empty; idempotency records are not
		// rebuilt from the log, so they live on disk, beside it.
		if a.idem, err = idemstore.Open(filepath.Join(c.Data, IdempotencyDir)); err != nil {
			a.Close()
			return nil, err
		}
		idem = a.idem
	}
	a.HTTP = httpapi.New(httpapi.Deps{Commands: a.Commands, Queries: a.Queries, Redis: a.Redis, Idempotency: idem,
		Ready: a.ready, Projections: a.projectionStatus, Rebuild: a.StartRebuild, Recovering: a.recoveringNow, Building: a.building,
		Registry: a.Registry, Logger: logger, RateLimit: httpapi.RateLimit{Rate: c.RateLimit, Burst: c.RateBurst}, Hub: a.Hub,
		StreamBuffer: c.StreamBuffer})
	a.registerMetrics()
	return a, nil
}

// WithSegmentRestorer gives the segments projection among ps what its
// Reconcile needs after Redis lost its data: the members streams in store,
// from which it restores what downstream was told (see
// projections.Segments.Restorer). It returns ps.
func WithSegmentRestorer(ps []projections.Projection, rdb redis.UniversalClient, store projections.Appender, logger *slog.Logger) []projections.Projection {
	for _, p := range ps {
		if s, ok := p.(*projections.Segments); ok {
			s.Restorer = &projections.SegmentOutbox{Redis: rdb, Store: store, Logger: logger}
		}
	}
	return ps
}

// Projections lists every read model partnerd keeps, configured by Defaults.
func Projections() []projections.Projection { return ProjectionsFor(Defaults()) }

// ProjectionsFor lists every read model partnerd keeps, configured by c.
func ProjectionsFor(c Config) []projections.Projection {
	return []projections.Projection{projections.Programs{}, projections.Partners{}, projections.Catalog{}, projections.Connections{},
		projections.NewSegments(), projections.Activities{MaxPerProgram: c.ActivityMaxPerProgram, MaxAge: c.ActivityMaxAge,
			AgeChecks: &projections.AgeChecks{Every: time.Minute}}}
}

// runner is the runner of projection name (nil when this build has none).
func (a *App) runner(name string) *projections.Runner {
	for _, r := range a.Runners {
		if r.Projection().Name() == name {
			return r
		}
	}
	return nil
}

// Layout implements queries.Layouts.
func (a *App) Layout(name string) int {
	if r := a.runner(name); r != nil {
		return r.Layout()
	}
	return 1
}

// Generation implements queries.Generations.
func (a *App) Generation(name string) int64 {
	if r := a.runner(name); r != nil {
		return r.Generation()
	}
	return 1
}

// Start runs the projections, then the relay (the in-process bus drops
// messages that have no subscriber yet), then bootstraps the demo program.
func (a *App) Start(ctx context.Context) error {
	ctx, a.cancel = context.WithCancel(ctx)
	a.ctx = ctx
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, newWatermillLogger(a.Logger))
	if err != nil {
		return err
	}
	a.router = router
	if err := a.initEpoch(ctx); err != nil {
		return err
	}
	head, err := a.Store.Head(ctx)
	if err != nil {
		return fmt.Errorf("log head: %w", err)
	}
	a.startHead.Store(uint64(head))
	// A projection with nothing in Redis over a log with events (a
	// projection new to the deployment, the embedded Redis that starts
	// empty, a Redis that lost its data while partnerd was down) is built
	// from the log first, as a rebuild: replayed without side effects,
	// then reconciled. Fed the log through the bus instead, the segments
	// projection would announce its whole history again.
	var fresh []*projections.Runner
	for _, r := range a.Runners {
		if err := r.Start(ctx); err != nil {
			return err
		}
		if r.Fresh() && head > 0 {
			fresh = append(fresh, r)
		}
	}
	if err := a.buildFresh(ctx, fresh); err != nil {
		return err
	}
	rebuiltAll := len(fresh) > 0 && len(fresh) == len(a.Runners)
	for _, r := range a.Runners {
		sub, err := a.Bus.NewSubscriber(projectionGroup(r))
		if err != nil {
			return fmt.Errorf("subscriber for %s: %w", r.Projection().Name(), err)
		}
		for _, topic := range r.Projection().Topics() {
			router.AddNoPublisherHandler(r.Projection().Name()+"@"+topic, topic, sub, a.handler(r, topic))
		}
	}
	if _, inProcess := a.Bus.(*bus.InProcess); inProcess && rebuiltAll && a.published(ctx) == 0 {
		// Every read model was just built from the log up to head at least,
		// and the in-process bus reaches nothing else: publishing the log
		// before head again would only be skipped, event by event.
		if err := (relay.RedisCheckpoints{Client: a.Redis}).Save(ctx, head); err != nil {
			return fmt.Errorf("relay checkpoint: %w", err)
		}
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := router.Run(ctx); err != nil {
			a.Logger.Error("projection router stopped", "err", err)
		}
	}()
	select {
	case <-router.Running():
	case <-time.After(30 * time.Second):
		return errors.New("projection router did not start within 30 s")
	}
	a.wg.Add(6)
	go func() { defer a.wg.Done(); a.Hub.Run(ctx) }()
	select {
	case <-a.Hub.Ready():
	case <-time.After(10 * time.Second):
		return errors.New("activity hub did not subscribe within 10 s")
	}
	// Every instance runs a relay; only the one holding the lease publishes.
	go func() { defer a.wg.Done(); _ = a.Lease.Run(ctx, a.Relay) }()
	go func() { defer a.wg.Done(); a.watchEpoch(ctx) }()
	// Every instance drains the segment membership outbox; appends are
	// idempotent (see projections.SegmentOutbox).
	outbox := &projections.SegmentOutbox{Redis: a.Redis, Store: a.Store, Programs: a.Queries.Programs, Logger: a.Logger}
	go func() { defer a.wg.Done(); outbox.Run(ctx) }()
	go func() { defer a.wg.Done(); a.lag.run(ctx, a.Store) }()
	go func() { defer a.wg.Done(); a.runScheduler(ctx) }()
	a.migrateLayouts()
	return nil
}

// buildFresh builds the fresh projections rs from the log. On the
// embedded Redis, one after the other, dropping each old generation at
// once; on a shared Redis, at the same time, as each waits for runners
// elsewhere to see its switch.
func (a *App) buildFresh(ctx context.Context, rs []*projections.Runner) error {
	build := func(r *projections.Runner) error {
		name := r.Projection().Name()
		a.Logger.Info("building a projection from the log", "projection", name)
		rebuild := projections.Rebuild
		if a.mini != nil {
			rebuild = projections.RebuildAlone // nobody else sees this Redis
		}
		res, err := rebuild(ctx, a.Redis, a.Store, r.Projection(), nil)
		if err != nil {
			return fmt.Errorf("build projection %s: %w", name, err)
		}
		if err := r.Refresh(ctx); err != nil {
			return err
		}
		a.Logger.Info("projection built", "projection", name, "events", res.Events, "took", res.Duration)
		return nil
	}
	if a.mini != nil {
		for _, r := range rs {
			if err := build(r); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = build(r) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// migrateLayouts rebuilds, in the background, each projection whose live
// generation was built with an older key layout than this release's: the
// old generation keeps serving (queries read it the way its layout
// allows) until the new one switches in. Another instance that started
// the same rebuild holds its lock; this one then leaves it to that one.
func (a *App) migrateLayouts() {
	for _, r := range a.Runners {
		p := r.Projection()
		if have, want := r.Layout(), projections.LayoutOf(p); have < want {
			a.Logger.Info("projection built with an older key layout: rebuilding it", "projection", p.Name(),
				"generation", r.Generation(), "layout", have, "new_layout", want)
			if err := a.StartRebuild(p.Name()); err != nil {
				a.Logger.Warn("layout rebuild not started", "projection", p.Name(), "err", err)
			}
		}
	}
}

// WaitCaughtUp blocks until the relay has published the whole log as of now
// (with the in-process bus: until every projection applied it).
func (a *App) WaitCaughtUp(ctx context.Context) error {
	head, err := a.Store.Head(ctx)
	if err != nil {
		return err
	}
	for a.published(ctx) < head {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

// published is how far the log has been published and acknowledged, by
// this process's relay or by the leaseholder's (whose checkpoint is shared).
func (a *App) published(ctx context.Context) eventstore.Position {
	p := a.Relay.Position()
	if cp, err := (relay.RedisCheckpoints{Client: a.Redis}).Load(ctx); err == nil {
		p = max(p, cp)
	}
	return p
}

// Close stops everything in order: relay and projections, bus, Redis, store.
func (a *App) Close() {
	a.closed.Do(func() {
		if a.cancel != nil {
			a.cancel()
		}
		if a.router != nil {
			_ = a.router.Close()
		}
		a.wg.Wait()
		if a.Bus != nil {
			_ = a.Bus.Close()
		}
		if a.Redis != nil {
			_ = a.Redis.Close()
		}
		if a.mini != nil {
			a.mini.Close()
		}
		if a.idem != nil {
			if err := a.idem.Close(); err != nil {
				a.Logger.Error("closing idempotency store", "err", err)
			}
		}
		if a.Store != nil {
			if err := a.Store.Close(); err != nil {
				a.Logger.Error("closing event store", "err", err)
			}
		}
	})
}
