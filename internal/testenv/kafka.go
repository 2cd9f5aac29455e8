package testenv

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// KafkaBrokersEnv names the variable that holds the test Kafka brokers,
// comma-separated, e.g. 127.0.0.1:9192.
const KafkaBrokersEnv = "PARTNERD_TEST_KAFKA_BROKERS"

// KafkaBrokers returns the brokers of the real Kafka to test against. If
// PARTNERD_TEST_KAFKA_BROKERS is unset it fails the test in CI and skips it
// elsewhere. The test fails if the first broker does not accept a TCP
// connection. Topics are shared by every test and run: use unique topic and
// consumer-group names.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	var brokers []string
	for _, b := range strings.Split(os.Getenv(KafkaBrokersEnv), ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	if len(brokers) == 0 {
		if InCI() {
			t.Fatal(KafkaBrokersEnv + " is not set but CI=true: tests that need a real Kafka must run; " +
				"use bash scripts/test.sh, or eval \"$(scripts/kafka.sh start)\" first")
			return nil
		}
		t.Skip("real Kafka not configured: run `eval \"$(scripts/kafka.sh start)\"` or bash scripts/test.sh")
		return nil
	}
	conn, err := net.DialTimeout("tcp", brokers[0], pingTimeout)
	if err != nil {
		t.Fatalf("Kafka at %s=%s is unreachable: %v (start it with scripts/kafka.sh start)",
			KafkaBrokersEnv, strings.Join(brokers, ","), err)
	}
	_ = conn.Close()
	return brokers
}

// Kcat returns the path of Debian's kcat (a Kafka client partnerd did not
// write, used to check what lands on the topics). When kcat is missing it
// fails the test in CI and skips it elsewhere.
func Kcat(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"kcat", "kafkacat"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if InCI() {
		t.Fatal("kcat is not installed but CI=true: scripts/kafka.sh start installs it (apt-get install kcat)")
		return ""
	}
	t.Skip("kcat not installed: run scripts/kafka.sh start or apt-get install kcat")
	return ""
}
