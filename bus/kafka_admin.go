package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
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

// Backlog is the number of messages of topics after consumer group's
// committed offsets: what the group still has to handle, over every
// partition, whichever member it goes to. Offsets are committed a moment
// after the messages are acknowledged, so it may count a few handled
// already: it errs on the side of lag.
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
	admin, err := sarama.NewClusterAdmin(k.cfg.Brokers, k.baseConfig())
	if err != nil {
		return 0, fmt.Errorf("kafka bus: admin client for %v: %w", k.cfg.Brokers, err)
	}
	defer func() { _ = admin.Close() }()
	offsets, err := admin.ListConsumerGroupOffsets(k.name(group), parts)
	if err != nil {
		return 0, fmt.Errorf("kafka bus: offsets of group %s: %w", k.name(group), err)
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
			next := int64(-1)
			if b := offsets.GetBlock(topic, p); b != nil && b.Err == sarama.ErrNoError {
				next = b.Offset
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
