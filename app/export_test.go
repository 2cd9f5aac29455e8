package app

import "github.com/partnerd/partnerd/eventstore"

// PretendStartedAt makes the app believe the log was at head when it
// started (tests of the start-up readiness without racing a real catch-up).
func (a *App) PretendStartedAt(head eventstore.Position) {
	a.startHead.Store(uint64(head))
	a.caughtUp.Store(false)
}
