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
)

// InProcess is the default bus: an in-memory Pub/Sub split into partitions
// by message key (the stream ID) the way Kafka splits a topic. One key's
// messages stay in order while messages of different keys are handled
// concurrently (and batched by projections).
//
// Every subscription has its own queue per partition and moves through it
// at its own pace: a partition delivers its next message to a subscription
// once that subscription acknowledged the previous one, whatever the other
// subscriptions do. A slow projection therefore never delays a fast one
// (read-your-writes waits on the partners projection only). The queues of a
// subscription hold at most QueueLen messages in all; a publish waits for
// room (backpressure on the slowest subscriber), so memory stays bounded.
//
// Nothing is lost in memory between the relay's checkpoint and the
// projections: PublishAsync reports a batch done only once every
// subscription acknowledged every message of it, so the relay checkpoints
// at most up to what the slowest subscriber acknowledged. A subscription
// that stops before acknowledging a message, and a topic that had
// subscribers and has none left, fail the batch with ErrSubscriberGone.
// Messages to a topic nobody ever subscribed to are dropped.
type InProcess struct {
	// QueueLen caps the messages queued for one subscription (all its
	// partitions together) and not yet acknowledged; set before Subscribe.
	QueueLen int

	partitions int
	logger     watermill.LoggerAdapter
	closed     atomic.Bool

	mu   sync.Mutex
	subs map[string]map[*subscription]bool // topic → live subscriptions
	had  map[string]bool                   // topics that ever had a subscriber
	all  map[*subscription]bool            // every live subscription (Close cancels them)
}

// ErrSubscriberGone: a subscriber of the topic stopped (or none is left)
// before acknowledging every message; the messages may not have been
// handled and must be published again.
var ErrSubscriberGone = errors.New("in-process bus: a subscriber stopped before acknowledging")

// DefaultQueueLen is InProcess.QueueLen unless set: two relay batches.
const DefaultQueueLen = 8192

// NewInProcess makes an in-process bus with the given number of partitions per topic.
func NewInProcess(partitions int, logger watermill.LoggerAdapter) *InProcess {
	if partitions <= 0 {
		partitions = 32
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	return &InProcess{
		QueueLen:   DefaultQueueLen,
		partitions: partitions,
		logger:     logger,
		subs:       map[string]map[*subscription]bool{},
		had:        map[string]bool{},
		all:        map[*subscription]bool{},
	}
}

// PartitionKey is the metadata key that decides a message's partition.
const PartitionKey = MetaSubject

func (b *InProcess) partition(msg *message.Message) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(msg.Metadata.Get(PartitionKey)))
	return int(h.Sum32() % uint32(b.partitions))
}

// Pending is a published batch that every subscription has yet to
// acknowledge.
type Pending struct {
	left   atomic.Int64 // deliveries not acknowledged or failed, +1 while queueing
	failed atomic.Bool
	done   chan struct{}
}

func newPending() *Pending {
	p := &Pending{done: make(chan struct{})}
	p.left.Store(1)
	return p
}

func (p *Pending) settle() {
	if p.left.Add(-1) == 0 {
		close(p.done)
	}
}

func (p *Pending) fail() { p.failed.Store(true); p.settle() }

// Done is closed once every subscription acknowledged every message of the
// batch, or gave up on one.
func (p *Pending) Done() <-chan struct{} { return p.done }

// Err, once Done is closed: nil if every subscription acknowledged every
// message, else ErrSubscriberGone.
func (p *Pending) Err() error {
	if p.failed.Load() {
		return ErrSubscriberGone
	}
	return nil
}

// Wait blocks until the batch is done and returns Err.
func (p *Pending) Wait() error { <-p.done; return p.Err() }

// AsyncPublisher publishes without waiting for the subscribers: the relay
// keeps publishing while earlier batches are being handled, and moves its
// checkpoint past a batch only once the batch is done. Batches are
// delivered in the order PublishAsync was called.
type AsyncPublisher interface {
	PublishAsync(topic string, msgs ...*message.Message) (*Pending, error)
}

var _ AsyncPublisher = (*InProcess)(nil)

// Publish queues the messages and returns once all were acknowledged by all
// subscribers. It returns ErrSubscriberGone when a subscriber stopped
// meanwhile or none is left.
func (b *InProcess) Publish(topic string, msgs ...*message.Message) error {
	p, err := b.PublishAsync(topic, msgs...)
	if err != nil {
		return err
	}
	if err := p.Wait(); err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	return nil
}

// PublishAsync queues the messages for every live subscription of topic, in
// order per partition, waiting for room in a full queue, and returns the
// batch's acknowledgement. It fails with ErrSubscriberGone if the topic had
// subscribers and has none left, or the bus is closed.
func (b *InProcess) PublishAsync(topic string, msgs ...*message.Message) (*Pending, error) {
	if b.closed.Load() {
		return nil, fmt.Errorf("publish to %s: the bus closed: %w", topic, ErrSubscriberGone)
	}
	live, err := b.subscribers(topic)
	if err != nil {
		return nil, err
	}
	p := newPending()
	p.left.Add(int64(len(msgs) * len(live)))
	for _, m := range msgs {
		part := b.partition(m)
		for _, s := range live {
			s.push(part, entry{msg: m, p: p})
		}
	}
	p.settle()
	return p, nil
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

// Subscribe merges all partitions of topic into one channel. Every call gets
// every message (there are no consumer groups in process), at its own pace.
// A partition sends its next message once the previous one was acked; a
// nacked message is sent again first.
func (b *InProcess) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if b.closed.Load() {
		return nil, errors.New("in-process bus: closed")
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &subscription{ctx: ctx, cancel: cancel, topic: topic, logger: b.logger, room: max(1, b.QueueLen), queues: make([]partQueue, b.partitions),
		out: make(chan *message.Message)}
	s.hasRoom = sync.NewCond(&s.mu)
	for i := range s.queues {
		s.queues[i].ready = sync.NewCond(&s.mu)
	}
	b.mu.Lock()
	if b.closed.Load() { // Close ran meanwhile: it did not see s
		b.mu.Unlock()
		cancel()
		return nil, errors.New("in-process bus: closed")
	}
	if b.subs[topic] == nil {
		b.subs[topic] = map[*subscription]bool{}
	}
	b.subs[topic][s] = true
	b.had[topic] = true
	b.all[s] = true
	b.mu.Unlock()

	var wg sync.WaitGroup
	for i := range s.queues {
		wg.Add(1)
		go func() { defer wg.Done(); s.deliver(&s.queues[i]) }()
	}
	go func() { wg.Wait(); close(s.out) }()
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		delete(b.subs[topic], s)
		delete(b.all, s)
		b.mu.Unlock()
		s.close()
	})
	return s.out, nil
}

// Close stops every subscription; unacknowledged batches fail.
func (b *InProcess) Close() error {
	b.mu.Lock()
	b.closed.Store(true)
	subs := make([]*subscription, 0, len(b.all))
	for s := range b.all {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.cancel()
	}
	return nil
}

// NewSubscriber returns the bus itself: in process every subscriber sees
// every message, so consumer groups need nothing more.
func (b *InProcess) NewSubscriber(group string) (message.Subscriber, error) { return b, nil }

// subscription is one Subscribe call: a queue per partition, all guarded by
// mu, holding at most room more messages.
type subscription struct {
	ctx    context.Context
	cancel context.CancelFunc
	out    chan *message.Message
	topic  string
	logger watermill.LoggerAdapter

	mu      sync.Mutex
	hasRoom *sync.Cond // signalled when a message leaves a queue or on close
	room    int        // messages that may still be queued
	closed  bool
	queues  []partQueue
}

type partQueue struct {
	items []entry
	ready *sync.Cond // signalled when items grows or on close
}

type entry struct {
	msg *message.Message
	p   *Pending
}

// push queues e on partition part, waiting for room; on a closed
// subscription it fails e's batch instead.
func (s *subscription) push(part int, e entry) {
	s.mu.Lock()
	for s.room == 0 && !s.closed {
		s.hasRoom.Wait()
	}
	if s.closed {
		s.mu.Unlock()
		e.p.fail()
		return
	}
	s.room--
	q := &s.queues[part]
	q.items = append(q.items, e)
	s.mu.Unlock()
	q.ready.Signal()
}

// next waits for q's first message; ok is false once s is closed (q's
// remaining messages are failed then).
func (s *subscription) next(q *partQueue) (entry, bool) {
	s.mu.Lock()
	for len(q.items) == 0 && !s.closed {
		q.ready.Wait()
	}
	if s.closed {
		rest := q.items
		q.items = nil
		s.mu.Unlock()
		if len(rest) > 0 {
			s.logger.Info("in-process bus: subscription stopped; its queued messages fail their publish",
				watermill.LogFields{"topic": s.topic, "messages": len(rest)})
		}
		for _, e := range rest {
			e.p.fail()
		}
		return entry{}, false
	}
	e := q.items[0]
	q.items[0] = entry{}
	q.items = q.items[1:]
	s.room++
	s.mu.Unlock()
	s.hasRoom.Signal()
	return e, true
}

func (s *subscription) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.hasRoom.Broadcast()
	for i := range s.queues {
		s.queues[i].ready.Broadcast()
	}
}

// deliver sends q's messages one at a time, each until it is acked.
func (s *subscription) deliver(q *partQueue) {
	for {
		e, ok := s.next(q)
		if !ok {
			return
		}
		if s.send(e.msg) {
			e.p.settle()
		} else {
			e.p.fail()
		}
	}
}

// send delivers msg until it is acked (true) or the subscription stops
// (false). A nacked message is sent again at once (the projection runner
// pauses before it nacks).
func (s *subscription) send(msg *message.Message) bool {
	for {
		m := copyMessage(msg) // a fresh copy per attempt: ack and nack are per copy
		m.SetContext(s.ctx)
		select {
		case s.out <- m:
		case <-s.ctx.Done():
			return false
		}
		select {
		case <-m.Acked():
			return true
		case <-m.Nacked():
		case <-s.ctx.Done():
			select {
			case <-m.Acked():
				return true
			default:
				return false
			}
		}
	}
}

// copyMessage is msg.Copy with the metadata map sized up front: Copy
// grows it from empty through a dozen Sets (our envelopes carry 11-14
// keys), which cost ~6 % of an activity ingest's CPU with one copy per
// subscriber and message. Each copy keeps a map of its own, so no
// consumer (or a middleware added later) sees another's changes.
func copyMessage(msg *message.Message) *message.Message {
	m := message.NewMessage(msg.UUID, msg.Payload)
	m.Metadata = make(message.Metadata, len(msg.Metadata))
	for k, v := range msg.Metadata {
		m.Metadata[k] = v
	}
	return m
}
