package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/reservoir-atproto/reservoir/plc/directory"
	"github.com/reservoir-atproto/reservoir/plc/directory/pebblestore"
)

// runPLC is `reservoir plc`: a did:plc directory until SIGINT or SIGTERM.
func runPLC(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return plcMain(ctx, args, os.Stderr, nil)
}

// plcMain runs the directory until ctx ends, then shuts down gracefully.
// ready, if set, is told the listening address (tests listen on port 0).
func plcMain(ctx context.Context, args []string, stderr io.Writer, ready func(net.Addr)) error {
	fs := flag.NewFlagSet("plc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", plcEnv("RESERVOIR_PLC_LISTEN", ":2582"), "HTTP address (env RESERVOIR_PLC_LISTEN)")
	data := fs.String("data", plcEnv("RESERVOIR_PLC_DATA", "./plc-data"), "directory of the embedded store (env RESERVOIR_PLC_DATA)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: reservoir plc [--listen ADDR] [--data DIR]")
		fmt.Fprintln(stderr, "\nA did:plc directory for private networks and tests.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("plc: unexpected arguments %q", fs.Args())
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	store, err := pebblestore.Open(*data, pebblestore.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer store.Close()
	srv, err := directory.New(directory.Options{Store: store, Logger: logger, Version: buildVersion()})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("plc: %w", err)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("plc directory listening", "addr", ln.Addr().String(), "data", *data)
	if ready != nil {
		ready(ln.Addr())
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("plc: %w", err)
	case <-ctx.Done():
	}
	logger.Info("plc directory shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("plc: shutdown: %w", err)
	}
	<-served // http.ErrServerClosed
	return nil
}

func plcEnv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// plcVersion is the module version the binary was built from.
func buildVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "dev"
}
