package client

import (
	"context"
	"fmt"
	"iter"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

// The iterators below follow a listing's cursors to the end, one request
// per page (each with the client's retries), and yield its items in order.
// An error ends the iteration: it is yielded once, with the zero item.
// PageLimit 0 asks each page for the lexicon's maximum.
//
//	for entry, err := range c.AllRepos(ctx, 0) {
//		if err != nil { return err }
//		...
//	}

// AllRepos iterates over every repository of listRepos.
func (c *Client) AllRepos(ctx context.Context, pageLimit int) iter.Seq2[RepoEntry, error] {
	return pages(ctx, NSIDListRepos, func(ctx context.Context, cursor string) (*Page[RepoEntry], error) {
		return c.ListRepos(ctx, cursor, pageLimit)
	})
}

// AllReposByCollection iterates over every DID of listReposByCollection.
func (c *Client) AllReposByCollection(ctx context.Context, collection string, pageLimit int) iter.Seq2[syntax.DID, error] {
	return pages(ctx, NSIDListReposByCollection, func(ctx context.Context, cursor string) (*Page[syntax.DID], error) {
		return c.ListReposByCollection(ctx, collection, cursor, pageLimit)
	})
}

// AllBlobs iterates over every blob CID of listBlobs for did (since: only
// the blobs of records written after that rev; "" for all).
func (c *Client) AllBlobs(ctx context.Context, did, since string, pageLimit int) iter.Seq2[cid.Cid, error] {
	return pages(ctx, NSIDListBlobs, func(ctx context.Context, cursor string) (*Page[cid.Cid], error) {
		return c.ListBlobs(ctx, did, since, cursor, pageLimit)
	})
}

// AllHosts iterates over every host of listHosts.
func (c *Client) AllHosts(ctx context.Context, pageLimit int) iter.Seq2[Host, error] {
	return pages(ctx, NSIDListHosts, func(ctx context.Context, cursor string) (*Page[Host], error) {
		return c.ListHosts(ctx, cursor, pageLimit)
	})
}

// pages follows cursors. It stops when a page has no cursor, and fails
// with ErrCursorLoop when a cursor comes back (a server bug that would
// otherwise loop forever). An empty page with a new cursor continues: the
// spec leaves it open, and some servers filter whole pages.
func pages[T any](ctx context.Context, method string, fetch func(context.Context, string) (*Page[T], error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		seen := map[string]bool{}
		cursor := ""
		for {
			page, err := fetch(ctx, cursor)
			if err != nil {
				yield(zero, err)
				return
			}
			for _, it := range page.Items {
				if !yield(it, nil) {
					return
				}
			}
			if page.Cursor == "" {
				return
			}
			if seen[page.Cursor] {
				yield(zero, fmt.Errorf("%w: %s: cursor %q", ErrCursorLoop, method, page.Cursor))
				return
			}
			seen[page.Cursor] = true
			cursor = page.Cursor
		}
	}
}
