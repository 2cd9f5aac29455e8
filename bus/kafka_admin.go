package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// EnsureTopics creates those of topics that do not exist yet, with the
// configured partition count and replication factor.
func (k *Kafka) EnsureTopics(ctx context.Context, topics ...string) error {
	var missing []string
	for _, t := range topics {
		if _, ok := k.created.Load(t); !ok {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	admin, err := sarama.NewClusterAdmin(k.cfg.Brokers, k.baseConfig())
	if err != nil {
		return fmt.Errorf("kafka bus: admin client for %v: %w", k.cfg.Brokers, err)
	}
	defer func() { _ = admin.Close() }()
	metas, err := admin.DescribeTopics(missing)
	if err != nil {
		return fmt.Errorf("kafka bus: describe topics %v: %w", missing, err)
	}
	rf := k.cfg.ReplicationFactor
	if rf == 0 {
		rf = -1 // the broker's default.replication.factor
	}
	for _, m := range metas {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case m.Err == sarama.ErrNoError:
		case errors.Is(m.Err, sarama.ErrUnknownTopicOrPartition):
			detail := &sarama.TopicDetail{NumPartitions: int32(k.cfg.Partitions), ReplicationFactor: rf}
			err := admin.CreateTopic(m.Name, detail, false)
			if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
				return fmt.Errorf("kafka bus: create topic %s (%d partitions): %w", m.Name, k.cfg.Partitions, err)
			}
			if err == nil {
				k.mu.Lock()
				k.made = append(k.made, m.Name)
				k.mu.Unlock()
				k.logger.Info("created Kafka topic", watermill.LogFields{"topic": m.Name, "partitions": k.cfg.Partitions})
			}
		default:
			return fmt.Errorf("kafka bus: describe topic %s: %w", m.Name, m.Err)
		}
		k.created.Store(m.Name, struct{}{})
	}
	return nil
}

// Ping checks that a broker answers a request (ApiVersions), for readiness
// probes. It returns when ctx ends even if the broker does not answer.
func (k *Kafka) Ping(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		brokers := k.client.Brokers()
		if len(brokers) == 0 {
			errc <- errors.New("kafka bus: no broker known")
			return
		}
		b := brokers[0]
		if ok, _ := b.Connected(); !ok {
			_ = b.Open(k.client.Config())
		}
		if _, err := b.ApiVersions(&sarama.ApiVersionsRequest{}); err != nil {
			_ = b.Close() // reconnect on the next ping
			errc <- fmt.Errorf("kafka bus: broker %s: %w", b.Addr(), err)
			return
		}
		errc <- nil
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return fmt.Errorf("kafka bus: ping: %w", ctx.Err())
	}
}

// Handled records that group's subscriber in this process handled msg, a
// message of topic it received (its offset is in the message's context):
// Backlog counts it as done at once, not only when the offset is
// committed, a second or so later (Sarama commits in the background).
// Messages that carry no offset (not from this bus) are ignored.
func (k *Kafka) Handled(group, topic string, msg *message.Message) {
	p, ok1 := kafka.MessagePartitionFromCtx(msg.Context())
	o, ok2 := kafka.MessagePartitionOffsetFromCtx(msg.Context())
	if !ok1 || !ok2 {
		return
	}
	key := handledKey{k.name(group), k.name(topic), p}
	k.handledMu.Lock()
	if k.handled == nil {
		k.handled = map[handledKey]int64{}
	}
	if prev, ok := k.handled[key]; !ok || o > prev {
		k.handled[key] = o
	}
	k.handledMu.Unlock()
}

// handledNext is the offset after the last one of partition p of topic
// that group's subscriber in this process handled (-1 if none).
func (k *Kafka) handledNext(group, topic string, p int32) int64 {
	k.handledMu.Lock()
	defer k.handledMu.Unlock()
	if o, ok := k.handled[handledKey{group, topic, p}]; ok {
		return o + 1
	}
	return -1
}

// Backlog is the number of messages of topics that consumer group has
// still to handle, over every partition, whichever member it goes to:
// those after the group's committed offset, or after the last one this
// process handled (Handled) where that is further. Another member's
// offsets are committed a moment after it handled the messages, so it may
// count a few of those: it errs on the side of lag.
func (k *Kafka) Backlog(ctx context.Context, group string, topics []string) (int64, error) {
	parts := map[string][]int32{}
	for _, t := range topics {
		name := k.name(t)
		ps, err := k.client.Partitions(name)
		if err != nil {
			return 0, fmt.Errorf("kafka bus: partitions of %s: %w", name, err)
		}
		parts[name] = ps
	}
	group = k.name(group)
	offsets, err := k.groupOffsets(group, parts)
	if err != nil {
		return 0, err
	}
	var pending int64
	for topic, ps := range parts {
		for _, p := range ps {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			end, err := k.client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				return 0, fmt.Errorf("kafka bus: end of %s/%d: %w", topic, p, err)
			}
			next := k.handledNext(group, topic, p)
			if b := offsets.GetBlock(topic, p); b != nil && b.Err == sarama.ErrNoError {
				next = max(next, b.Offset)
			}
			if next < 0 { // nothing committed: the group starts at the oldest
				if next, err = k.client.GetOffset(topic, p, sarama.OffsetOldest); err != nil {
					return 0, fmt.Errorf("kafka bus: start of %s/%d: %w", topic, p, err)
				}
			}
			pending += max(0, end-next)
		}
	}
	return pending, nil
}

// groupOffsets are group's committed offsets of parts, asked with one
// admin client kept for the bus's life (status and readiness ask every
// second): a failed request drops it, the next call connects again.
func (k *Kafka) groupOffsets(group string, parts map[string][]int32) (*sarama.OffsetFetchResponse, error) {
	k.adminMu.Lock()
	defer k.adminMu.Unlock()
	k.mu.RLock()
	closed := k.closed
	k.mu.RUnlock()
	if closed {
		return nil, errors.New("kafka bus: bus closed")
	}
	if k.admin == nil {
		admin, err := sarama.NewClusterAdmin(k.cfg.Brokers, k.baseConfig())
		if err != nil {
			return nil, fmt.Errorf("kafka bus: admin client for %v: %w", k.cfg.Brokers, err)
		}
		k.admin = admin
	}
	offsets, err := k.admin.ListConsumerGroupOffsets(group, parts)
	if err != nil {
		_ = k.admin.Close()
		k.admin = nil
		return nil, fmt.Errorf("kafka bus: offsets of group %s: %w", group, err)
	}
	return offsets, nil
}
