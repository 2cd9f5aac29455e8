package app

import (
	"context"
	"time"

	"github.com/partnerd/partnerd/commands"
)

// SchedulerInterval is how often due contract transitions are looked for.
const SchedulerInterval = time.Second

// runScheduler appends the time-based contract transitions (deadlines,
// start dates, scheduled expiries and switches) as real events, so they
// appear in history. The partner read model keeps a per-program sorted set
// of when each partner is next due; this loop reads it and runs the
// partner's Tick command. Several instances may run it: a Tick that finds
// nothing due appends nothing, and the expected-version append settles
// races.
func (a *App) runScheduler(ctx context.Context) {
	t := time.NewTicker(SchedulerInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		programs, err := a.Queries.Programs(ctx)
		if err != nil {
			a.Logger.Warn("scheduler: list programs", "err", err)
			continue
		}
		for _, prog := range programs {
			due, err := a.Queries.DuePartners(ctx, prog, time.Now(), 500)
			if err != nil {
				a.Logger.Warn("scheduler: due partners", "program", prog, "err", err)
				continue
			}
			for _, id := range due {
				if _, err := a.Commands.TickPartner.Handle(ctx, prog, id, commands.Meta{Actor: "system:scheduler"}); err != nil && ctx.Err() == nil {
					a.Logger.Warn("scheduler: tick", "program", prog, "partner", id, "err", err)
				}
			}
		}
	}
}
