package embedded_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/eventstore/embedded"
	"github.com/partnerd/partnerd/eventstore/eventstoretest"
)

// A filtered read returns exactly the kept streams' events, in log order,
// decoded as ReadAll decodes them, pages by the last position examined,
// and never goes past the head; CountStreams counts the streams under a
// prefix, each once however many events it has.
func TestReadAllFilteredAndCountStreams(t *testing.T) {
	s, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	// partner-a-0 … partner-a-9 (i+1 events each), activity-a-0 … -4, and
	// a stream whose name continues another's ("partner-a-1" / "partner-a-10").
	for round := 0; round < 10; round++ {
		for i := round; i < 10; i++ {
			if _, err := s.Append(ctx, fmt.Sprintf("partner-a-%d", i), eventstore.Any, []eventstore.EventData{eventstoretest.Event("partner.x", fmt.Sprintf(`{"r":%d}`, round))}); err != nil {
				t.Fatal(err)
			}
		}
		if round < 5 {
			if _, err := s.Append(ctx, fmt.Sprintf("activity-a-%d", round), eventstore.Any, []eventstore.EventData{eventstoretest.Event("activity.x", `{}`)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.Append(ctx, "partner-a-10", eventstore.Any, []eventstore.EventData{eventstoretest.Event("partner.x", `{}`)}); err != nil {
		t.Fatal(err)
	}
	head, _ := s.Head(ctx)
	all, err := s.ReadAll(ctx, 0, 1000)
	if err != nil || eventstore.Position(len(all)) != head {
		t.Fatalf("ReadAll: %d events, %v; head %d", len(all), err, head)
	}
	keep := func(stream string) bool {
		return strings.HasPrefix(stream, "partner-") && strings.HasSuffix(stream, "1")
	}
	var want []eventstore.RecordedEvent
	for _, e := range all {
		if keep(e.StreamID) {
			want = append(want, e)
		}
	}
	var got []eventstore.RecordedEvent
	after, calls := eventstore.Position(0), 0
	for {
		page, last, err := s.ReadAllFiltered(ctx, after, 2, keep)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 2 || last > head {
			t.Fatalf("page of %d events up to %d: max 2, head %d", len(page), last, head)
		}
		if last == after {
			break
		}
		got = append(got, page...)
		after = last
		if calls++; calls > 100 {
			t.Fatal("the filtered read does not advance")
		}
	}
	if after != head {
		t.Fatalf("the scan stopped at %d, head %d", after, head)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(want) != 2 {
		t.Fatalf("filtered read\n got %v\nwant %v", got, want)
	}
	for _, tc := range []struct {
		prefix string
		want   int
	}{{"partner-", 11}, {"partner-a-1", 2}, {"activity-", 5}, {"group-", 0}, {"", 16}} {
		if n, err := s.CountStreams(ctx, tc.prefix); err != nil || n != tc.want {
			t.Errorf("CountStreams(%q) = %d, %v; want %d", tc.prefix, n, err, tc.want)
		}
	}
}
