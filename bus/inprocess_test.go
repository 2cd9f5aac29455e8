package bus_test

import (
	"testing"

	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/bus/bustest"
)

func TestInProcessContract(t *testing.T) {
	bustest.Run(t, func(t *testing.T) bustest.Bus {
		b := bus.NewInProcess(8, nil)
		t.Cleanup(func() { _ = b.Close() })
		return b
	})
}
