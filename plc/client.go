package plc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Client defaults.
const (
	DefaultTimeout          = 15 * time.Second
	DefaultMaxResponseBytes = 1 << 20
)

// Errors a directory answers with, as Client maps them. A *DirectoryError
// wraps one of them when the status says which.
var (
	ErrNotFound    = errors.New("DID not registered")       // 404 "DID not registered"
	ErrDeactivated = errors.New("DID deactivated")          // 404 "DID not available" (tombstoned), or 410
	ErrRejected    = errors.New("operation rejected")       // 400: the directory refused the operation or request
	ErrConflict    = errors.New("concurrent operation")     // 409: another operation won the race
	ErrDirectory   = errors.New("directory request failed") // any other failure status
)

// DirectoryError is a failure status from a directory, with the message
// of its {"message": ...} body.
type DirectoryError struct {
	Status  int
	Message string
	Kind    error // ErrNotFound, ErrDeactivated, ErrRejected, ErrConflict or ErrDirectory
}

func (e *DirectoryError) Error() string {
	return fmt.Sprintf("plc: directory: %d: %s", e.Status, e.Message)
}

func (e *DirectoryError) Unwrap() error { return e.Kind }

// Client talks to a did:plc directory (plc.directory or `reservoir plc`).
// Every call has a timeout and a bounded response size, and what it
// returns has been checked: operations are parsed strictly, log entries
// carry their operations' CIDs, documents are for the DID asked. A Client
// may be used concurrently; its fields must not change after first use.
type Client struct {
	BaseURL          string        // e.g. "https://plc.directory"
	HTTPClient       *http.Client  // nil: http.DefaultClient
	Timeout          time.Duration // per call; 0: DefaultTimeout
	MaxResponseBytes int64         // 0: DefaultMaxResponseBytes
	UserAgent        string        // "": "reservoir-plc"
}

// Submit posts a signed operation for did.
func (c *Client) Submit(ctx context.Context, did syntax.DID, op Op) error {
	body, err := op.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodPost, "/"+did.String(), body)
	return err
}

// CreateAccount builds the genesis operation of an account, signs it with
// rotationKey (one of a.RotationKeys), submits it and returns the new DID.
func (c *Client) CreateAccount(ctx context.Context, a Account, rotationKey atcrypto.PrivateKey) (syntax.DID, *Operation, error) {
	op, did, err := CreateGenesis(a, rotationKey)
	if err != nil {
		return "", nil, err
	}
	if err := c.Submit(ctx, did, op); err != nil {
		return "", nil, err
	}
	return did, op, nil
}

// Resolve fetches the DID document.
func (c *Client) Resolve(ctx context.Context, did syntax.DID) (*DIDDocument, error) {
	var doc DIDDocument
	if err := c.getJSON(ctx, "/"+did.String(), &doc); err != nil {
		return nil, err
	}
	if doc.ID != did {
		return nil, fmt.Errorf("plc: directory answered %s with the document of %q", did, doc.ID)
	}
	return &doc, nil
}

// Data fetches the DID's current state.
func (c *Client) Data(ctx context.Context, did syntax.DID) (*DocumentData, error) {
	var data DocumentData
	if err := c.getJSON(ctx, "/"+did.String()+"/data", &data); err != nil {
		return nil, err
	}
	if data.DID != did {
		return nil, fmt.Errorf("plc: directory answered %s with the data of %q", did, data.DID)
	}
	return &data, nil
}

// Log fetches the DID's active operations, oldest first.
func (c *Client) Log(ctx context.Context, did syntax.DID) ([]Op, error) {
	var raw []json.RawMessage
	if err := c.getJSON(ctx, "/"+did.String()+"/log", &raw); err != nil {
		return nil, err
	}
	ops := make([]Op, len(raw))
	for i, r := range raw {
		op, err := ParseOp(r)
		if err != nil {
			return nil, fmt.Errorf("plc: log of %s, operation %d: %w", did, i, err)
		}
		ops[i] = op
	}
	return ops, nil
}

// AuditLog fetches the DID's full log, nullified operations included.
// Use VerifyAuditLog to check it against the rules.
func (c *Client) AuditLog(ctx context.Context, did syntax.DID) ([]LogEntry, error) {
	var log []LogEntry
	if err := c.getJSON(ctx, "/"+did.String()+"/log/audit", &log); err != nil {
		return nil, err
	}
	for i, e := range log {
		if e.DID != did {
			return nil, fmt.Errorf("plc: audit log of %s: entry %d is for %s", did, i, e.DID)
		}
	}
	return log, nil
}

// Last fetches the DID's latest active operation.
func (c *Client) Last(ctx context.Context, did syntax.DID) (Op, error) {
	body, err := c.do(ctx, http.MethodGet, "/"+did.String()+"/log/last", nil)
	if err != nil {
		return nil, err
	}
	op, err := ParseOp(body)
	if err != nil {
		return nil, fmt.Errorf("plc: last operation of %s: %w", did, err)
	}
	return op, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	body, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("plc: GET %s: %w", path, err)
	}
	return nil
}

// do sends one request and returns the body of a 2xx answer.
func (c *Client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, fmt.Errorf("plc: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	ua := c.UserAgent
	if ua == "" {
		ua = "reservoir-plc"
	}
	req.Header.Set("User-Agent", ua)
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("plc: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	limit := c.MaxResponseBytes
	if limit <= 0 {
		limit = DefaultMaxResponseBytes
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("plc: %s %s: reading the answer: %w", method, path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("plc: %s %s: answer larger than %d bytes", method, path, limit)
	}
	if resp.StatusCode/100 != 2 {
		return nil, directoryError(resp.StatusCode, data)
	}
	return data, nil
}

func directoryError(status int, body []byte) error {
	var msg struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &msg) != nil || msg.Message == "" {
		msg.Message = http.StatusText(status)
	}
	kind := ErrDirectory
	switch {
	case status == http.StatusNotFound && strings.HasPrefix(msg.Message, "DID not available"):
		kind = ErrDeactivated
	case status == http.StatusNotFound:
		kind = ErrNotFound
	case status == http.StatusGone:
		kind = ErrDeactivated
	case status == http.StatusBadRequest:
		kind = ErrRejected
	case status == http.StatusConflict:
		kind = ErrConflict
	}
	return &DirectoryError{Status: status, Message: msg.Message, Kind: kind}
}

// CreateDID registers the DID of a new hosted account: a genesis operation
// with the signing key as verificationMethods.atproto, the rotation key as
// its only rotation key, the handle and the PDS endpoint, signed with the
// rotation key. It is what the host's account creation calls
// (host.DIDCreator).
func (c *Client) CreateDID(ctx context.Context, handle string, signingKey, rotationKey atcrypto.PrivateKey, endpoint string) (string, error) {
	signPub, err := signingKey.PublicKey()
	if err != nil {
		return "", fmt.Errorf("plc: signing key: %w", err)
	}
	rotPub, err := rotationKey.PublicKey()
	if err != nil {
		return "", fmt.Errorf("plc: rotation key: %w", err)
	}
	h, err := syntax.ParseHandle(handle)
	if err != nil {
		return "", fmt.Errorf("plc: handle: %w", err)
	}
	did, _, err := c.CreateAccount(ctx, Account{Handle: h, Endpoint: endpoint, SigningKey: signPub, RotationKeys: []atcrypto.PublicKey{rotPub}}, rotationKey)
	return string(did), err
}
