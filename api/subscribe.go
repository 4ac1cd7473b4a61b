package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/reservoir-atproto/reservoir/events"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

func (a *API) registerSubscribe(srv *xrpc.Server) {
	srv.Subscription("com.atproto.sync.subscribeRepos", a.subscribeRepos)
}

// subscribeRepos is the firehose (sync-spec §3). Everything that can be
// refused is refused before the upgrade, as HTTP JSON: a cursor that is not
// a non-negative integer (400), a request without Upgrade: websocket (426),
// too many subscribers or shutdown (503). A future cursor is refused after
// it, as the FutureCursor error frame the spec prescribes.
func (a *API) subscribeRepos(w http.ResponseWriter, r *http.Request) error {
	p, err := xrpc.ParamsFrom(r)
	if err != nil {
		return err
	}
	raw, err := p.String("cursor", false)
	if err != nil {
		return err
	}
	cursor, err := events.ParseCursor(raw)
	if err != nil {
		return xrpc.InvalidRequestf("Parameter \"cursor\" must be a non-negative integer, got %q", raw).WithCause(err)
	}
	if !headerHasToken(r.Header, "Upgrade", "websocket") {
		e := xrpc.NewError(http.StatusUpgradeRequired, xrpc.NameInvalidRequest, "subscribeRepos is a websocket stream: connect with Upgrade: websocket")
		e.Header = http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}
		return e
	}
	fh := a.opts.Firehose
	if fh == nil {
		return xrpc.NewError(http.StatusNotImplemented, xrpc.NameMethodNotImplemented, "This service has no event stream")
	}
	err = fh.ServeWebSocket(w, r, cursor)
	switch {
	case errors.Is(err, events.ErrTooManySubscribers):
		return xrpc.NotEnoughResources("Too many subscribers: try again later")
	case errors.Is(err, events.ErrClosed):
		return xrpc.NotEnoughResources("The service is shutting down")
	}
	return err
}

// headerHasToken reports whether the comma-separated header name holds
// token (case-insensitively), as "Upgrade: websocket" must.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
