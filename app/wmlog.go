package app

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// watermillLogger adapts slog for watermill, Info mapped to Debug. It asks
// the logger whether a level is on before anything is built: watermill's own
// slog adapter turns the fields into attributes first, and the in-process
// bus traces every message it delivers, so with tracing off that cost
// several per cent of a busy server's CPU for lines nobody wrote.
type watermillLogger struct {
	slog  *slog.Logger
	inner watermill.LoggerAdapter
}

func newWatermillLogger(l *slog.Logger) watermill.LoggerAdapter {
	return watermillLogger{slog: l, inner: watermill.NewSlogLoggerWithLevelMapping(l, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})}
}

func (w watermillLogger) on(level slog.Level) bool {
	return w.slog.Enabled(context.Background(), level)
}

// Error implements watermill.LoggerAdapter.
func (w watermillLogger) Error(msg string, err error, fields watermill.LogFields) {
	w.inner.Error(msg, err, fields)
}

// Info implements watermill.LoggerAdapter (logged at Debug).
func (w watermillLogger) Info(msg string, fields watermill.LogFields) {
	if w.on(slog.LevelDebug) {
		w.inner.Info(msg, fields)
	}
}

// Debug implements watermill.LoggerAdapter.
func (w watermillLogger) Debug(msg string, fields watermill.LogFields) {
	if w.on(slog.LevelDebug) {
		w.inner.Debug(msg, fields)
	}
}

// Trace implements watermill.LoggerAdapter.
func (w watermillLogger) Trace(msg string, fields watermill.LogFields) {
	if w.on(watermill.LevelTrace) {
		w.inner.Trace(msg, fields)
	}
}

// With implements watermill.LoggerAdapter.
func (w watermillLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	// The fields do not change which levels are on: w.slog still tells.
	return watermillLogger{slog: w.slog, inner: w.inner.With(fields)}
}
