package bus

// CreatedTopics lists the topics k created, for tests to delete.
func CreatedTopics(k *Kafka) []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return append([]string(nil), k.made...)
}
