package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/partnerd/partnerd/app"
	"github.com/partnerd/partnerd/bus"
	"github.com/partnerd/partnerd/domain"
	"github.com/partnerd/partnerd/eventstore"
	"github.com/partnerd/partnerd/relay"
)

func republish(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("republish", stderr)
	cfg := flags(fs)
	from := fs.String("from", "", "first log position to publish (inclusive)")
	to := fs.String("to", "", "last log position to publish (inclusive; default: the head)")
	category := fs.String("category", "", "only this stream category (partner) or topic (partnerd.partners)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("republish takes no arguments, got %q", fs.Args())}
	}
	if *from == "" {
		return usageError{"republish: --from POSITION is required"}
	}
	var rg relay.RepublishRange
	var err error
	if rg.From, err = eventstore.ParsePosition(*from); err != nil {
		return usageError{"republish --from: " + err.Error()}
	}
	if *to != "" {
		if rg.To, err = eventstore.ParsePosition(*to); err != nil {
			return usageError{"republish --to: " + err.Error()}
		}
		if rg.To == 0 {
			return usageError{"republish --to: 0 is no event's position (the first is 1; leave --to out for the head)"}
		}
		if rg.To < rg.From {
			return usageError{"republish: --to is before --from"}
		}
	}
	if c := *category; c != "" && !knownCategory(c) {
		return usageError{fmt.Sprintf("republish --category: unknown %q: a stream category (%s) or a topic (%s)",
			c, strings.Join(categories, ", "), strings.Join(bus.Topics(), ", "))}
	}
	rg.Category = *category
	if len(cfg.KafkaBrokers) == 0 {
		return errors.New("republish: PARTNERD_KAFKA_BROKERS is not set; the in-process bus has no subscribers outside the server")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	store, err := app.OpenStore(*cfg)
	if err != nil {
		return fmt.Errorf("%w (with the embedded store, stop the server first)", err)
	}
	defer store.Close()
	b, err := app.OpenKafkaBus(*cfg, watermill.NewSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return err
	}
	defer b.Close()
	ctx, stop := withSignals()
	defer stop()
	bar := newProgressBar(stderr, "republish")
	n, err := relay.Republish(ctx, store, b, rg, bar.update)
	bar.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "republished %d events\n", n)
	return nil
}

// categories are the stream categories of the log.
var categories = []string{domain.CategoryPartner, domain.CategoryGroup, domain.CategoryTemplateTerm, domain.CategorySegment,
	domain.CategoryActivity, domain.CategoryConnection, domain.CategoryCredential, domain.CategoryProgram}

// knownCategory: c is a stream category or the topic of one.
func knownCategory(c string) bool {
	return slices.Contains(categories, c) || slices.Contains(bus.Topics(), c)
}
