package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

// runCollections is `reservoir collections`: how many repositories have
// records in each collection, from a running server's GET /admin/collections.
func runCollections(args []string) error {
	return collectionsMain(context.Background(), args, os.Getenv, os.Stdout, os.Stderr)
}

// collectionsPageLimit is the page size asked of the server (its maximum;
// a variable so that tests can page).
var collectionsPageLimit = 10000

func collectionsMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("collections", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", env("RESERVOIR_URL", "http://localhost:2480"), "URL of the reservoir server (env RESERVOIR_URL)")
	prefix := fs.String("prefix", "", "only collections whose NSID starts with this, e.g. app.bsky.")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: reservoir collections [--server URL] [--prefix NSID-PREFIX]")
		fmt.Fprintln(stderr, "\nPrints how many repositories have records in each collection, by NSID.")
		fmt.Fprintln(stderr, "The admin password is read from RESERVOIR_ADMIN_PASSWORD.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("collections: unexpected arguments %q", fs.Args())
	}
	base, err := checkServiceURL(*server)
	if err != nil {
		return fmt.Errorf("collections: --server: %w", err)
	}
	c := &collectionsClient{base: base, password: getenv("RESERVOIR_ADMIN_PASSWORD"), http: &http.Client{Timeout: time.Minute}}
	fmt.Fprintf(stdout, "%10s  %s\n", "REPOS", "COLLECTION")
	cursor := ""
	for {
		page, err := c.page(ctx, *prefix, cursor)
		if err != nil {
			return err
		}
		for _, e := range page.Collections {
			fmt.Fprintf(stdout, "%10d  %s\n", e.Repos, e.Collection)
		}
		if page.Cursor == "" {
			return nil
		}
		cursor = page.Cursor
	}
}

// collectionsClient reads GET /admin/collections.
type collectionsClient struct {
	base     string
	password string
	http     *http.Client
}

type collectionsResponse struct {
	Cursor      string `json:"cursor"`
	Collections []struct {
		Collection string `json:"collection"`
		Repos      uint64 `json:"repos"`
	} `json:"collections"`
}

func (c *collectionsClient) page(ctx context.Context, prefix, cursor string) (*collectionsResponse, error) {
	q := url.Values{"limit": {fmt.Sprint(collectionsPageLimit)}}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/admin/collections?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("collections: %w", err)
	}
	req.SetBasicAuth("admin", c.password)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("collections: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("collections: reading the response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Message string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("collections: %s: %s: %s", resp.Status, e.Error, e.Message)
		}
		return nil, fmt.Errorf("collections: %s", resp.Status)
	}
	var page collectionsResponse
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("collections: decoding the response: %w", err)
	}
	return &page, nil
}
