package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// NewSubscriber returns a subscriber in consumer group group: each group
// receives every message of a topic once (at least once across restarts);
// the members of one group share the topic's partitions.
func (k *Kafka) NewSubscriber(group string) (message.Subscriber, error) {
	if group == "" {
		return nil, errors.New("kafka bus: a subscriber needs a consumer group")
	}
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers:               k.cfg.Brokers,
		Unmarshaler:           CloudEventsMarshaler{},
		OverwriteSaramaConfig: k.ConsumerConfig(),
		ConsumerGroup:         k.name(group),
		NackResendSleep:       k.cfg.NackResendSleep,
		ReconnectRetrySleep:   time.Second,
	}, k.logger)
	if err != nil {
		return nil, fmt.Errorf("kafka bus: subscriber for group %s: %w", group, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		_ = sub.Close()
		return nil, errors.New("kafka bus: bus closed")
	}
	k.subs = append(k.subs, sub)
	return &kafkaSubscriber{bus: k, sub: sub}, nil
}

// kafkaSubscriber creates a topic before it subscribes to it: a consumer
// group cannot join a topic that does not exist.
type kafkaSubscriber struct {
	bus *Kafka
	sub *kafka.Subscriber
}

func (s *kafkaSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	topic = s.bus.name(topic)
	if err := s.bus.EnsureTopics(ctx, topic); err != nil {
		return nil, err
	}
	ch, err := s.sub.Subscribe(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("kafka bus: subscribe to %s: %w", topic, err)
	}
	return ch, nil
}

func (s *kafkaSubscriber) Close() error { return s.sub.Close() }
