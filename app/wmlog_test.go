package app

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
)

// The level-checking watermill logger writes what its slog logger's level
// lets through (Info as Debug, fields and With fields included) and nothing
// below it.
func TestWatermillLoggerKeepsLevels(t *testing.T) {
	var buf bytes.Buffer
	l := newWatermillLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))).
		With(watermill.LogFields{"topic": "t1"})
	l.Trace("trace line", watermill.LogFields{"k": "v"})
	l.Debug("debug line", watermill.LogFields{"k": "v"})
	l.Info("info line", nil)
	l.Error("error line", errors.New("boom"), nil)
	out := buf.String()
	for _, want := range []string{"msg=\"debug line\" topic=t1 k=v", "level=DEBUG msg=\"info line\"", "level=ERROR msg=\"error line\" topic=t1 error=boom"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "trace line") {
		t.Errorf("a trace line got through at Debug:\n%s", out)
	}
	buf.Reset()
	l = newWatermillLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: watermill.LevelTrace})))
	l.Trace("trace line", nil)
	if !strings.Contains(buf.String(), "trace line") {
		t.Errorf("a trace line did not get through at Trace: %q", buf.String())
	}
}
