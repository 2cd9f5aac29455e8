package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/eventstore"
)

// BenchmarkInProcessRouter measures the bus alone: publish batches of 1000
// through the partitioned Go channel into a Watermill router whose handler
// does nothing.
func BenchmarkInProcessRouter(b *testing.B) {
	for _, parts := range []int{1, 32, 128} {
		b.Run(fmt.Sprintf("partitions=%d", parts), func(b *testing.B) {
			ip := bus.NewInProcess(parts, watermill.NopLogger{})
			router, _ := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
			router.AddNoPublisherHandler("h", "t", ip, func(*message.Message) error { return nil })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { _ = router.Run(ctx) }()
			<-router.Running()
			msgs := make([]*message.Message, 1000)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				for j := range msgs {
					msgs[j] = bus.NewMessage(eventstore.RecordedEvent{ID: fmt.Sprint(i, "-", j), StreamID: fmt.Sprintf("partner-a-%d", j),
						Type: "partner.created", Version: uint64(i), Position: eventstore.Position(i*1000 + j + 1), Data: []byte(`{}`), Metadata: []byte(`{}`)})
				}
				if err := ip.Publish("t", msgs...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*1000)/time.Since(start).Seconds(), "msgs/s")
			_ = router.Close()
		})
	}
}
