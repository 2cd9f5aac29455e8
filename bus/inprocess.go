package bus

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// InProcess is the default bus: Watermill's Go channel Pub/Sub, split into
// partitions by message key (the stream ID) the way Kafka splits a topic.
// Publish blocks until every subscriber acked every message, so nothing is
// lost in memory between the relay's checkpoint and the projections. The
// partitions let one stream's messages stay in order while messages of
// different streams are handled concurrently (and batched by projections).
type InProcess struct {
	ch         *gochannel.GoChannel
	partitions int
}

// NewInProcess makes an in-process bus with the given number of partitions per topic.
func NewInProcess(partitions int, logger watermill.LoggerAdapter) *InProcess {
	if partitions <= 0 {
		partitions = 32
	}
	return &InProcess{
		ch:         gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, logger),
		partitions: partitions,
	}
}

// PartitionKey is the metadata key that decides a message's partition.
const PartitionKey = MetaSubject

func (b *InProcess) partition(msg *message.Message) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(msg.Metadata.Get(PartitionKey)))
	return int(h.Sum32() % uint32(b.partitions))
}

func subTopic(topic string, p int) string { return fmt.Sprintf("%s#%d", topic, p) }

// Publish sends messages in order per partition, partitions concurrently,
// and returns once all were acked by all subscribers.
func (b *InProcess) Publish(topic string, msgs ...*message.Message) error {
	lanes := make(map[int][]*message.Message)
	for _, m := range msgs {
		p := b.partition(m)
		lanes[p] = append(lanes[p], m)
	}
	if len(lanes) == 1 {
		for p, ms := range lanes {
			return b.ch.Publish(subTopic(topic, p), ms...)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(lanes))
	for p, ms := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.ch.Publish(subTopic(topic, p), ms...); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// Subscribe merges all partitions of topic into one channel. Every call gets
// every message (there are no consumer groups in process).
func (b *InProcess) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	var wg sync.WaitGroup
	for p := 0; p < b.partitions; p++ {
		in, err := b.ch.Subscribe(ctx, subTopic(topic, p))
		if err != nil {
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range in {
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	return out, nil
}

// Close closes the underlying Go channel Pub/Sub.
func (b *InProcess) Close() error { return b.ch.Close() }

// NewSubscriber returns the bus itself: in process every subscriber sees
// every message, so consumer groups need nothing more.
func (b *InProcess) NewSubscriber(group string) (message.Subscriber, error) { return b, nil }
