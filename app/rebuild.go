package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/httpapi"
	"github.com/partnerd/partnerd/projections"
)

// rebuilds tracks the rebuilds this process runs, for GET /v1/projections.
type rebuilds struct {
	mu      sync.Mutex
	running map[string]*rebuildState
}

type rebuildState struct {
	done, total eventstore.Position
	events      uint64
	started     time.Time
	took        time.Duration // once finished
	err         error
	finished    bool
}

// ProjectionNames lists the projections this build runs.
func (a *App) ProjectionNames() []string {
	names := make([]string, len(a.Runners))
	for i, r := range a.Runners {
		names[i] = r.Projection().Name()
	}
	return names
}

// StartRebuild rebuilds a projection in the background, in this process.
func (a *App) StartRebuild(name string) error {
	r := a.runner(name)
	if r == nil {
		return fmt.Errorf("projection %q: %w", name, httpapi.ErrUnknownProjection)
	}
	p := r.Projection()
	a.rb.mu.Lock()
	if st := a.rb.running[name]; st != nil && !st.finished {
		a.rb.mu.Unlock()
		return projections.ErrRebuildRunning
	}
	st := &rebuildState{started: time.Now()}
	a.rb.running[name] = st
	a.rb.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		res, err := projections.Rebuild(a.ctx, a.Redis, a.Store, p, func(done, total eventstore.Position, events uint64) {
			a.rb.mu.Lock()
			st.done, st.total, st.events = done, total, events
			a.rb.mu.Unlock()
		})
		a.rb.mu.Lock()
		st.err, st.finished, st.took = err, true, time.Since(st.started)
		a.rb.mu.Unlock()
		if errors.Is(err, projections.ErrRebuildRunning) {
			a.Logger.Info("rebuild left to the instance already running it", "projection", name)
			return
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			a.Logger.Error("rebuild failed", "projection", name, "err", err)
			return
		}
		a.Logger.Info("rebuild done", "projection", name, "generation", res.NewGeneration, "events", res.Events, "took", res.Duration)
	}()
	return nil
}

func (a *App) rebuildStatus(name string, s *httpapi.ProjectionStatus) {
	a.rb.mu.Lock()
	defer a.rb.mu.Unlock()
	st := a.rb.running[name]
	if st == nil {
		return
	}
	s.Rebuild = &httpapi.RebuildStatus{Running: !st.finished, Done: st.done.String(), Total: st.total.String(), Events: st.events}
	if st.total > 0 {
		s.Rebuild.Progress = min(1, float64(st.done)/float64(st.total))
	} else if st.finished && st.err == nil {
		s.Rebuild.Progress = 1
	}
	took := st.took
	if !st.finished {
		took = time.Since(st.started)
	}
	if took > 0 {
		s.Rebuild.EventsPerSecond = float64(st.events) / took.Seconds()
	}
	if st.err != nil {
		s.Rebuild.Error = st.err.Error()
	}
}
