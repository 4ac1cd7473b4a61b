// Package xrpc is the HTTP framework of reservoir's XRPC routes: routing of
// /xrpc/NSID by lexicon method kind, handlers that return errors, the
// mapping of those errors to lexicon error bodies, strict parameter and
// input parsing, auth middleware, request metrics and the health check.
// The endpoint handlers themselves live with the services.
//
// # Handlers return errors
//
// A HandlerFunc writes its success response and returns nil, or writes
// nothing and returns an error. One adapter, shared by every route, then:
//
//   - maps the error to a response: an *Error (found with errors.As, so
//     wrapping with %w keeps it) gives its Status and the body
//     {"error": Name, "message": Message}; an *http.MaxBytesError (a body
//     limit hit while reading) gives 413 PayloadTooLarge; anything else gives
//     500 {"error": "InternalServerError", "message": "Internal Server
//     Error"}. Error bodies are always application/json; charset=utf-8. The
//     internal cause is never sent;
//   - logs one line per 5xx response with the cause, and every recovered
//     panic with its stack (a panic is a 500);
//   - counts the request in Metrics.
//
// If the handler already started its response (a CAR stream that fails
// half way), no error body can follow: the adapter logs and cuts the
// connection (http.ErrAbortHandler) so the client sees a broken transfer,
// not a short CAR that parses. CARResponse buffers 64 KiB before the status
// goes out, so small responses still fail cleanly. A handler that returns
// context.Canceled after its client went away is counted as 499 and not
// logged as an error.
//
// # Routing
//
// Server.Query registers GET (HEAD also allowed; net/http drops the body),
// Server.Procedure POST and Server.Subscription GET (the handler does the
// websocket upgrade: the adapter's ResponseWriter supports Hijack and
// Flush). Under /xrpc/:
//
//   - an unregistered NSID: 501 MethodNotImplemented, as the TypeScript
//     reference answers (the spec allows 404 or 501);
//   - a registered NSID with the wrong HTTP method: 405 with an Allow header
//     and an InvalidRequest body "Incorrect HTTP method (POST) expected GET"
//     (the reference says 400; the event-stream spec asks for 405);
//   - GET /xrpc/_health: 200 {"version": V}, or 503 {"version": V,
//     "error": "ServiceUnavailable", "message": ...} when Options.Health
//     fails.
//
// Paths outside /xrpc/ get 404. Mount the Server in a parent mux without
// stripping the prefix, next to the routes that are not XRPC:
//
//	mux.Handle(xrpc.PathPrefix, srv)
//	mux.Handle("/admin/", srv.Endpoint("admin", auth.RequireAdmin(admin)))
//	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// # Errors and status codes
//
// Names are the lexicons' (clients key off the name). Statuses are the ones
// decided in sync-spec §10 and the contract, which differ from the
// TypeScript reference (it sends every named error as 400):
//
//	status  name                                        constructor
//	400     InvalidRequest                              InvalidRequest, InvalidRequestf; bad parameters and input
//	400     InvalidSwap                                 InvalidSwap
//	400     FutureCursor, ConsumerTooSlow               FutureCursor, ConsumerTooSlow (error frames once the stream is open)
//	400     InvalidHandle, HandleNotAvailable,          createAccount errors
//	        UnsupportedDomain, UnresolvableDid,
//	        IncompatibleDidDoc
//	401     AuthenticationRequired (+WWW-Authenticate)  AuthRequired; missing or wrong credentials
//	403     Forbidden                                   Forbidden; authenticated, not allowed
//	403     RepoTakendown, RepoSuspended,               RepoTakendown, RepoSuspended, RepoDeactivated
//	        RepoDeactivated
//	403     HostBanned                                  HostBanned
//	404     RepoNotFound, RecordNotFound, BlobNotFound, RepoNotFound, RecordNotFound, BlobNotFound,
//	        BlockNotFound, HeadNotFound, HostNotFound   BlockNotFound, HeadNotFound, HostNotFound
//	405     InvalidRequest (+Allow)                     MethodNotAllowed
//	413     PayloadTooLarge                             PayloadTooLarge
//	415     UnsupportedMediaType                        UnsupportedMediaType (not used by DecodeJSON)
//	429     RateLimitExceeded (+Retry-After)            RateLimitExceeded
//	500     InternalServerError                         Internal, or any plain error
//	501     MethodNotImplemented                        MethodNotImplemented
//	502     UpstreamFailure                             UpstreamFailure
//	503     NotEnoughResources                          NotEnoughResources
//	504     UpstreamTimeout                             UpstreamTimeout
//
// NewError builds any other.
//
// # Parameters and input
//
// ParamsFrom parses the query string strictly and Params reads it as the
// lexicons shape it: an empty value counts as absent, a scalar given twice
// is an error, arrays are repeated parameters, integers are decimal and
// range-checked (out of range is 400, not clamped), booleans are exactly
// "true" or "false", and formats (did, handle, nsid, record-key, tid, cid,
// at-uri) are checked with indigo's atproto/syntax. Every error is a 400
// InvalidRequest naming the parameter.
//
// DecodeJSON reads procedure input: Content-Type application/json (else 400
// InvalidRequest, as the reference answers, not 415), at most maxBytes (else
// 413), one JSON object in valid UTF-8 (else 400); unknown fields are
// ignored. Every route also has a body limit, Route.MaxBodyBytes, defaulting
// to Options.MaxBodyBytes (1 MiB): it bounds raw reads too (uploadBlob,
// importRepo), and set negative it lets a streaming handler enforce its own.
//
// # Auth
//
// Auth checks "Authorization: Basic" (user "admin", Auth.AdminPassword,
// compared in constant time; an empty password means admin never succeeds)
// and "Authorization: Bearer TOKEN" (resolved by a TokenChecker). Wrap
// handlers with RequireAdmin, RequireAuth or OptionalAuth; they put the
// Caller in the request context (CallerFrom). Present but invalid
// credentials are 401 even under OptionalAuth. A 401 carries
// WWW-Authenticate.
//
// # Timeouts
//
// Connection timeouts belong to the http.Server that serves the mux, not to
// this package. Set ReadHeaderTimeout (10 s) and IdleTimeout (2 min), keep
// MaxHeaderBytes at its default (1 MiB, which also bounds getBlocks' cids),
// and leave WriteTimeout and ReadTimeout at zero: getRepo streams and
// subscribeRepos connections last longer than any fixed deadline, so those
// handlers set per-write deadlines with http.ResponseController (which the
// adapter's ResponseWriter supports through Unwrap).
//
// # Concurrency
//
// A Server serves requests concurrently once built. Register methods before
// serving: registration is safe at any time (copy on write, lookups take no
// lock), but a method is unknown (501) until registered. Options, Auth and
// Metrics are read-only after construction. A Params belongs to one
// request.
package xrpc
