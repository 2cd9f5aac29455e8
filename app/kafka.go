package app

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/partnerd/partnerd/bus"
)

// OpenKafkaBus is newKafkaBus for admin commands (republish).
func OpenKafkaBus(c Config, logger watermill.LoggerAdapter) (Bus, error) {
	return newKafkaBus(c, logger)
}

// newKafkaBus connects the Kafka bus to c.KafkaBrokers and creates every
// partnerd topic that is missing with c.KafkaPartitions partitions.
func newKafkaBus(c Config, logger watermill.LoggerAdapter) (Bus, error) {
	k, err := bus.NewKafka(bus.KafkaConfig{
		Brokers:    c.KafkaBrokers,
		Partitions: c.KafkaPartitions,
		Topics:     bus.Topics(),
		Namespace:  c.KafkaNamespace,
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("PARTNERD_KAFKA_BROKERS: %w", err)
	}
	return k, nil
}
