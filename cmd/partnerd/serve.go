package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/httpapi"
	"github.com/partnerd/partnerd/internal/gctune"
)

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func serve(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	cfg := flags(fs)
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("serve takes no arguments, got %q", fs.Args())}
	}
	log := logger(stderr)
	ctx, stop := withSignals()
	defer stop()

	// The address is bound first: a port in use fails before anything is
	// opened, and while the read models are built from the log (which
	// grows with it) probes and clients get /healthz 200, /readyz 503 and
	// 503 problems, not refused connections.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	var handler atomic.Pointer[http.Handler]
	starting := httpapi.Starting()
	handler.Store(&starting)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) }),
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	defer srv.Close()

	a, err := app.New(*cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	defer gctune.Start(cfg.GCHeadroomMB, cfg.MemoryLimitMB)()
	if err := a.Start(ctx); err != nil {
		return err
	}
	key, created, err := a.Bootstrap(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap program %s: %w", cfg.BootstrapProgram, err)
	}
	api := a.HTTP.Handler()
	handler.Store(&api)
	srv.RegisterOnShutdown(a.HTTP.CloseStreams)
	fmt.Fprintf(stdout, "partnerd listening on http://%s\n", displayAddr(ln.Addr()))
	if cfg.BootstrapProgram != "" {
		switch {
		case cfg.BootstrapKey != "":
			// The operator chose it; printing it would only copy a secret into logs.
			fmt.Fprintf(stdout, "program %q, API key: the one set by PARTNERD_BOOTSTRAP_KEY\n", cfg.BootstrapProgram)
		case key != "":
			fmt.Fprintf(stdout, "program %q, API key: %s\n", cfg.BootstrapProgram, key)
		case created:
			fmt.Fprintf(stdout, "program %q created\n", cfg.BootstrapProgram)
		default:
			fmt.Fprintf(stdout, "program %q exists; its key was shown when it was created\n", cfg.BootstrapProgram)
		}
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("HTTP shutdown", "err", err)
	}
	return nil
}

func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if tcp.IP.IsUnspecified() {
		return fmt.Sprintf("localhost:%d", tcp.Port)
	}
	return tcp.String()
}
