package bus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"

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
//
// Go channel Pub/Sub silently discards a message whose subscriber stops
// before acknowledging it, and one published when a topic has no
// subscriber. Publish turns both into errors once a topic has had a
// subscriber, so the relay never checkpoints past a message a projection
// did not apply.
type InProcess struct {
	ch         *gochannel.GoChannel
	partitions int
	closed     atomic.Bool

	mu   sync.Mutex
	subs map[string]map[*subscription]bool // topic → live subscriptions
	had  map[string]bool                   // topics that ever had a subscriber
}

type subscription struct{ ctx context.Context }

// ErrSubscriberGone: a subscriber of the topic stopped (or none is left)
// before acknowledging every message; the messages may not have been
// handled and must be published again.
var ErrSubscriberGone = errors.New("in-process bus: a subscriber stopped before acknowledging")

// NewInProcess makes an in-process bus with the given number of partitions per topic.
func NewInProcess(partitions int, logger watermill.LoggerAdapter) *InProcess {
	if partitions <= 0 {
		partitions = 32
	}
	return &InProcess{
		ch:         gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, logger),
		partitions: partitions,
		subs:       map[string]map[*subscription]bool{},
		had:        map[string]bool{},
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
// and returns once all were acked by all subscribers. It returns
// ErrSubscriberGone when a subscriber stopped meanwhile or none is left.
func (b *InProcess) Publish(topic string, msgs ...*message.Message) error {
	live, err := b.subscribers(topic)
	if err != nil {
		return err
	}
	if err := b.publish(topic, msgs); err != nil {
		return err
	}
	if b.closed.Load() {
		return fmt.Errorf("publish to %s: the bus closed: %w", topic, ErrSubscriberGone)
	}
	for _, s := range live {
		if s.ctx.Err() != nil {
			return fmt.Errorf("publish to %s: %w", topic, ErrSubscriberGone)
		}
	}
	return nil
}

// subscribers returns the live subscriptions of topic, or an error if it
// had some and has none left.
func (b *InProcess) subscribers(topic string) ([]*subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*subscription, 0, len(b.subs[topic]))
	for s := range b.subs[topic] {
		out = append(out, s)
	}
	if len(out) == 0 && b.had[topic] {
		return nil, fmt.Errorf("publish to %s: no subscriber left: %w", topic, ErrSubscriberGone)
	}
	return out, nil
}

func (b *InProcess) publish(topic string, msgs []*message.Message) error {
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
	sub := &subscription{ctx: ctx}
	b.mu.Lock()
	if b.subs[topic] == nil {
		b.subs[topic] = map[*subscription]bool{}
	}
	b.subs[topic][sub] = true
	b.had[topic] = true
	b.mu.Unlock()
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		delete(b.subs[topic], sub)
		b.mu.Unlock()
	})
	return out, nil
}

// Close closes the underlying Go channel Pub/Sub.
func (b *InProcess) Close() error {
	b.closed.Store(true)
	return b.ch.Close()
}

// NewSubscriber returns the bus itself: in process every subscriber sees
// every message, so consumer groups need nothing more.
func (b *InProcess) NewSubscriber(group string) (message.Subscriber, error) { return b, nil }
