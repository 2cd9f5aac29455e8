package app

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
)

func TestWatermillLoggerLevels(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  []string // messages that must appear
		not   []string // messages that must not
	}{
		{slog.LevelInfo, []string{"boom"}, []string{"chatty", "detail", "per-message"}},
		{slog.LevelDebug, []string{"boom", "chatty", "detail"}, []string{"per-message"}},
		{watermill.LevelTrace, []string{"boom", "chatty", "detail", "per-message"}, nil},
	} {
		var buf bytes.Buffer
		l := newWatermillLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level}))).
			With(watermill.LogFields{"topic": "t"})
		l.Error("boom", errors.New("x"), nil)
		l.Info("chatty", nil)
		l.Debug("detail", nil)
		l.Trace("per-message", watermill.LogFields{"uuid": "u"})
		out := buf.String()
		for _, m := range tc.want {
			if !strings.Contains(out, m) {
				t.Errorf("level %v: %q missing from %q", tc.level, m, out)
			}
		}
		for _, m := range tc.not {
			if strings.Contains(out, m) {
				t.Errorf("level %v: %q logged: %q", tc.level, m, out)
			}
		}
		if !strings.Contains(out, "topic=t") {
			t.Errorf("level %v: With fields lost: %q", tc.level, out)
		}
	}
}
